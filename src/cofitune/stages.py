"""Workflow stages: file paths in, file paths out. The only layer between the entry points
(`cofitune.cli`, `workflow/scripts/`) and the pure core; every write goes through `cofitune.io`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cofitune import io, regions
from cofitune.candidates import candidate_from_spec
from cofitune.data import TokenizeReport, tokenize_examples, validate_records
from cofitune.masking import SoftMask, resolve_parts, row_scales
from cofitune.modeling import ModelSource, load_prepared, load_source, save_model
from cofitune.tasks import SPECIALITY_PREFIX, generation_task, multiple_choice_task, speciality_rows, validate_mc_row

log = logging.getLogger(__name__)

TRAINED_FILE = "trained.safetensors"
TRAIN_METRICS_FILE = "train_metrics.json"


# ------------------------------------------------------------------ model and data


def prepare_model(model_cfg: Mapping[str, Any], out_dir: str | Path, seed: int) -> None:
    """Materialise the configured base model once as a local safetensors folder."""
    model, tokenizer = load_source(ModelSource.from_config(dict(model_cfg)), seed=seed)
    regions.family_of(model)  # fail here, not in every training job, for an unsupported architecture
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)
    log.info("prepared %s (%s, %d parameters) in %s", model_cfg["name_or_path"], model.config.model_type, regions.count_parameters(model), out_dir)


def prepare_data(
    model_dir: str | Path, train_files: Sequence[str | Path], max_length: int, loss_on: str, out_dir: str | Path, report_file: str | Path
) -> TokenizeReport:
    """Validate and tokenize the SFT data once; the Arrow dataset is shared by every training job."""
    from datasets import Dataset

    _, tokenizer = load_prepared(model_dir)
    examples = [ex for path in train_files for ex in validate_records(io.read_jsonl(path), path)]
    rows, report = tokenize_examples(tokenizer, examples, max_length, loss_on)
    log.info("tokenized %d examples: %d truncated to %d tokens, %d dropped without a response token",
             report.examples, report.truncated, max_length, report.dropped_no_target)
    with io.atomic_dir(out_dir) as tmp:
        Dataset.from_list(rows).save_to_disk(str(tmp))
    io.write_json(report_file, {**report.__dict__, "max_length": max_length, "loss_on": loss_on, "files": [str(p) for p in train_files]})
    return report


def load_training_rows(data_dir: str | Path):
    from datasets import load_from_disk

    return load_from_disk(str(data_dir))


def make_tasks(
    model_dir: str | Path,
    speciality: Mapping[str, Mapping[str, Any]],
    local_versatility: Mapping[str, str | Path],
    out_dir: str | Path,
) -> None:
    """Render lm-eval task YAMLs (and their rows) for the speciality tests and our own suite."""
    _, tokenizer = load_prepared(model_dir)
    out_dir = Path(out_dir).resolve()
    with io.atomic_dir(out_dir) as tmp:
        for name, spec in speciality.items():
            task = SPECIALITY_PREFIX + name
            rows, kind = speciality_rows(io.read_jsonl(spec["test"]), spec["test"], tokenizer)
            io.write_jsonl(tmp / f"{task}.jsonl", rows)
            config = (
                generation_task(task, out_dir / f"{task}.jsonl", spec.get("max_gen_toks", 32))
                if kind == "generate_until"
                else multiple_choice_task(task, out_dir / f"{task}.jsonl", prompt_field="prompt")
            )
            io.write_yaml(tmp / f"{task}.yaml", config)
        for task, path in local_versatility.items():
            rows = [validate_mc_row(row, path, line) for line, row in io.read_jsonl(path)]
            io.write_jsonl(tmp / f"{task}.jsonl", rows)
            io.write_yaml(tmp / f"{task}.yaml", multiple_choice_task(task, out_dir / f"{task}.jsonl"))


# ------------------------------------------------------------------ training


def apply_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Overwrite the named parameters of `model` with trained values (tied weights follow)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            if name not in params or params[name].shape != value.shape:
                raise ValueError(f"trained tensor {name} {tuple(value.shape)} does not fit this base model")
            params[name].copy_(value)


def resolve_precision(precision: str) -> str:
    """'auto': bf16 on a GPU that has it, otherwise full fp32 (exact, and what CPU tests compare)."""
    if precision != "auto":
        return {"fp32": "no"}.get(precision, precision)
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def build_accelerator(precision: str):
    from accelerate import Accelerator

    return Accelerator(mixed_precision=resolve_precision(precision), cpu=not torch.cuda.is_available())


def train_candidate(
    model_dir: str | Path,
    data_dir: str | Path,
    candidate_spec: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
    out_dir: str | Path,
    module_sets: Mapping[str, Sequence[str]] | None = None,
    importance_file: str | Path | None = None,
    softmask_parts: str | Sequence[str] = "auto",
) -> None:
    """Selective SFT of one candidate; writes only the trained tensors and train_metrics.json."""
    from accelerate.utils import set_seed

    from cofitune.train import TrainSettings, train

    out_dir = Path(out_dir)
    candidate = candidate_from_spec(candidate_spec)
    settings = TrainSettings.from_config(dict(training), seed=seed)
    accelerator = build_accelerator(training.get("precision", "auto"))
    set_seed(seed)
    model, tokenizer = load_prepared(model_dir)
    trainable = candidate.trainable_names(model, module_sets, seed)
    net = _trainable_network(model, candidate, trainable, seed)
    net.to(accelerator.device)
    softmask_parts = resolve_parts(softmask_parts, model, trainable)
    mask = _soft_mask(model, candidate.id, candidate.softmask, importance_file, trainable, softmask_parts)
    transforms = [t for t in (mask, _l2_anchor(net, candidate)) if t is not None]
    rows = load_training_rows(data_dir)
    n_trained = sum(p.numel() for p in net.parameters() if p.requires_grad)
    fingerprint = settings.fingerprint({
        "candidate": candidate.describe(), "options": dict(candidate.options), "trainable": trainable,
        "precision": accelerator.mixed_precision, "world": accelerator.num_processes,
        "mask": io.file_digest(importance_file) if mask else None, "parts": list(softmask_parts),
    })
    log.info("%s (%s): training %d of %d parameters on %d examples, soft-mask on %d tensors, %s, %d process(es)",
             candidate.id, candidate.method, n_trained, regions.count_parameters(model), len(rows),
             len(mask) if mask else 0, accelerator.mixed_precision, accelerator.num_processes)
    result = train(
        net, rows, settings, accelerator, pad_id=tokenizer.pad_token_id,
        checkpoint_dir=out_dir / "checkpoint", fingerprint=fingerprint, grad_transform=_chain(transforms),
    )
    if accelerator.is_main_process:
        n_layers = len(regions.decoder_layers(model))
        io.save_tensors(out_dir / TRAINED_FILE, _trained_tensors(net, candidate, trainable),
                        metadata={"candidate": candidate.id, "base": str(model_dir)})
        io.write_json(out_dir / TRAIN_METRICS_FILE, {
            **candidate.describe(),
            "options": dict(candidate.options),
            "layer_indices": candidate.layer_indices(n_layers),
            "trainable_tensors": len(trainable),
            "trainable_params": n_trained,
            "total_params": regions.count_parameters(model),
            "steps": result.steps,
            "resumed_from_step": result.resumed_from_step,
            "final_loss": result.final_loss,
            "input_tokens": result.input_tokens,
            "target_tokens": result.target_tokens,
            "wall_seconds": result.wall_seconds,
            "tokens_per_second": result.input_tokens / max(result.wall_seconds, 1e-9),
            "precision": accelerator.mixed_precision,
            "processes": accelerator.num_processes,
            "softmask_tensors": len(mask) if mask else 0,
            "softmask_parts": list(softmask_parts) if mask else [],
            "seed": seed,
            "history": result.history,
        })
    accelerator.wait_for_everyone()


def _trainable_network(model: nn.Module, candidate, trainable: Sequence[str], seed: int) -> nn.Module:
    """The module the loop trains: the model with only `trainable` unfrozen, or its LoRA wrapper."""
    if candidate.method == "lora":
        from cofitune.baselines import wrap_lora

        opts = candidate.options
        return wrap_lora(model, int(opts["rank"]), float(opts["alpha"]), opts["roles"], float(opts.get("dropout", 0.0)), seed)
    regions.freeze_all_but(model, trainable)
    return model


def _trained_tensors(net: nn.Module, candidate, trainable: Sequence[str]) -> dict[str, torch.Tensor]:
    """What the candidate changed, keyed by base-model names (LoRA: its merged weights)."""
    if candidate.method == "lora":
        from cofitune.baselines import merged_lora_tensors

        return merged_lora_tensors(net)
    keep = set(trainable)
    return {n: p for n, p in net.named_parameters() if n in keep}


def _l2_anchor(net: nn.Module, candidate):
    if candidate.method != "l2":
        return None
    from cofitune.baselines import L2Anchor

    return L2Anchor(net, float(candidate.options["lam"]))


def _chain(transforms: Sequence[Any]):
    if not transforms:
        return None

    def apply(model: nn.Module) -> None:
        for transform in transforms:
            transform(model)

    return apply


def interpolate_wise_ft(
    model_dir: str | Path, full_sft_file: str | Path, candidate_spec: Mapping[str, Any], trained_out: str | Path, metrics_out: str | Path
) -> None:
    """Wise-FT: (1 - alpha) base + alpha full SFT, for every tensor full SFT trained; no training."""
    from cofitune.baselines import wise_ft

    candidate = candidate_from_spec(candidate_spec)
    alpha = float(candidate.options["alpha"])
    model, _ = load_prepared(model_dir)
    base = {n: p.detach() for n, p in model.named_parameters()}
    io.save_tensors(trained_out, wise_ft(base, io.load_tensors(full_sft_file), alpha))
    n_layers = len(regions.decoder_layers(model))
    io.write_json(metrics_out, {
        **candidate.describe(), "options": {"alpha": alpha}, "layer_indices": list(range(n_layers)),
        "trainable_tensors": 0, "trainable_params": 0, "total_params": regions.count_parameters(model), "steps": 0,
        "resumed_from_step": 0, "final_loss": None, "input_tokens": 0, "target_tokens": 0, "wall_seconds": 0.0,
        "history": [],
    })


def _soft_mask(model, candidate_id, softmask, importance_file, trainable, parts) -> SoftMask | None:
    if not softmask:
        return None
    if importance_file is None:
        raise ValueError(f"candidate {candidate_id!r} uses the soft-mask but no importance file was given")
    scales = row_scales(model, load_importance(importance_file), trainable, parts)
    if not scales:
        raise ValueError(f"candidate {candidate_id!r}: the soft-mask parts {list(parts)} touch none of its trained tensors")
    return SoftMask(model, scales)


def load_candidate_model(model_dir: str | Path, trained_file: str | Path | None) -> tuple[nn.Module, Any]:
    model, tokenizer = load_prepared(model_dir)
    if trained_file:
        apply_tensors(model, io.load_tensors(trained_file))
    model.eval()
    return model, tokenizer


def merge(model_dir: str | Path, trained_file: str | Path, out_dir: str | Path) -> None:
    """A full Hugging Face folder: the base model with the trained tensors written in."""
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)


# ------------------------------------------------------------------ importance (fine level)


def estimate_importance(
    model_dir: str | Path, files: Sequence[str | Path], settings: Mapping[str, Any], seed: int, out_file: str | Path
) -> None:
    """Raw and per-layer normalised importance of one source; data-parallel over processes."""
    from accelerate.utils import set_seed

    from cofitune.importance import ImportanceSettings, estimate, normalise
    from cofitune.train import collate

    accelerator = build_accelerator("fp32")
    set_seed(seed)
    model, tokenizer = load_prepared(model_dir)
    model.to(accelerator.device)
    examples = [ex for path in files for ex in validate_records(io.read_jsonl(path), path)][: settings["max_examples"]]
    rows, _ = tokenize_examples(tokenizer, examples, settings["max_length"], loss_on="all")
    size = settings["batch_size"]
    batches = [collate(rows[i : i + size], tokenizer.pad_token_id) for i in range(0, len(rows), size)]
    mine = batches[accelerator.process_index :: accelerator.num_processes]
    log.info("importance from %d examples in %d batches (%d on this process)", len(rows), len(batches), len(mine))
    keys = ("dropout", "temperature", "accumulate", "batch_size")
    raw = estimate(model, _progress(mine), ImportanceSettings(**{k: settings[k] for k in keys}),
                   reduce=lambda t: accelerator.reduce(t, reduction="sum") if accelerator.num_processes > 1 else t)
    if accelerator.is_main_process:
        tensors = {**{f"raw.{t}": v for t, v in raw.items()}, **{f"norm.{t}": normalise(v) for t, v in raw.items()}}
        io.save_tensors(out_file, tensors, metadata={"examples": str(len(rows)), "files": ",".join(map(str, files))})
    accelerator.wait_for_everyone()


def _progress(batches: Sequence[Any]):
    for i, batch in enumerate(batches, start=1):
        if i == 1 or i % 10 == 0 or i == len(batches):
            log.info("importance batch %d/%d", i, len(batches))
        yield batch


def load_importance(path: str | Path) -> dict[str, torch.Tensor]:
    """The normalised importance per unit type (what the soft-mask uses)."""
    return {k.removeprefix("norm."): v for k, v in io.load_tensors(path).items() if k.startswith("norm.")}


def combine_importance(source_files: Sequence[str | Path], out_file: str | Path) -> None:
    from cofitune.importance import combine

    io.save_tensors(out_file, {f"norm.{t}": v for t, v in combine([load_importance(p) for p in source_files]).items()})


def tabulate_importance(
    sources: Sequence[str], source_files: Sequence[str | Path], combined_file: str | Path, table_out: str | Path, plot_dir: str | Path
) -> None:
    from cofitune.plots import importance_heatmap
    from cofitune.tables import importance_table

    per_source = {name: io.load_tensors(path) for name, path in zip(sources, source_files, strict=True)}
    combined = load_importance(combined_file)
    io.write_parquet(table_out, importance_table(per_source, combined))
    for unit_type, values in combined.items():
        with io.atomic_path(Path(plot_dir) / f"importance_{unit_type}.png") as tmp:
            importance_heatmap(values, unit_type, tmp)


# ------------------------------------------------------------------ search (coarse level)


def decide_level(
    level: int, mode: str, nodes: Sequence[Mapping[str, str]], metrics_files: Sequence[str | Path],
    evaluation: Mapping[str, Any], out_file: str | Path,
) -> None:
    """Score a level's contenders from their evaluations and record the one the search keeps."""
    from cofitune import search
    from cofitune.scores import candidate_scores

    contenders = [search.Node(**n) for n in nodes]
    rows, scores = [], {}
    for node, metrics_file in zip(contenders, metrics_files, strict=True):
        record = io.read_json(metrics_file)
        s = candidate_scores(record["metrics"], evaluation["speciality"], evaluation["groups"], evaluation["formats"], evaluation["rank_format"])
        scores[node.id] = search.Score(uni=s["uni"], ver=s["ver"])
        rows.append({"node": node.id, **vars(node), "spe": s["spe"], "ver": s["ver"], "uni": s["uni"]})
    chosen = search.best(contenders, scores)
    log.info("level %d (%s): %s -> keep %s", level, mode, ", ".join(f"{r['node']} {r['uni']:.2f}" for r in rows), chosen.id)
    io.write_json(out_file, {"level": level, "mode": mode, "contenders": rows, "chosen": vars(chosen), "chosen_id": chosen.id})


# ------------------------------------------------------------------ evaluation and tables


def evaluate_candidate(
    model_dir: str | Path,
    trained_file: str | Path | None,
    tasks_dir: str | Path,
    evaluation: Mapping[str, Any],
    candidate_id: str,
    metrics_file: str | Path,
    samples_file: str | Path,
) -> None:
    from cofitune.evaluate import EvalPlan, evaluate_model
    from cofitune.tables import samples_table

    plan = EvalPlan(
        speciality=tuple(evaluation["speciality"]),
        groups={g: tuple(t) for g, t in evaluation["groups"].items()},
        formats=tuple(evaluation["formats"]),
        include_path=(str(Path(tasks_dir).resolve()), *evaluation.get("include_path", [])),
        batch_size=evaluation["batch_size"],
        limit=evaluation.get("limit"),
        metrics=evaluation.get("metrics", {}),
        seed=evaluation["seed"],
    )
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    device = evaluation.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    start = time.perf_counter()
    output = evaluate_model(model, tokenizer, plan, device=device)
    io.write_parquet(samples_file, samples_table(candidate_id, output.samples))
    io.write_json(metrics_file, {
        "candidate": candidate_id,
        "metrics": output.metrics,
        "batch_size": plan.batch_size,
        "limit": plan.limit,
        "device": device,
        "wall_seconds": time.perf_counter() - start,
    })


def aggregate(
    candidate_ids: Sequence[str],
    metrics_files: Sequence[str | Path],
    train_metrics_files: Mapping[str, str | Path],
    samples_files: Sequence[str | Path],
    evaluation: Mapping[str, Any],
    config: Mapping[str, Any],
    model_dir: str | Path,
    candidates_out: str | Path,
    samples_out: str | Path,
) -> None:
    import pyarrow as pa

    from cofitune.tables import candidates_table

    base_params = regions.count_parameters(load_prepared(model_dir)[0])
    records = []
    for candidate_id, metrics_file in zip(candidate_ids, metrics_files, strict=True):
        train_file = train_metrics_files.get(candidate_id)
        records.append((io.read_json(metrics_file), io.read_json(train_file) if train_file else None))
    table = candidates_table(records, evaluation, config, base_params)
    io.write_parquet(candidates_out, table)
    io.write_parquet(samples_out, pa.concat_tables([io.read_parquet(p) for p in samples_files]))


def summarise(
    candidates_file: str | Path, samples_file: str | Path, level_files: Sequence[str | Path], final_id: str | None,
    evaluation: Mapping[str, Any], seed: int, summary_out: str | Path, markdown_out: str | Path, trace_out: str | Path,
) -> None:
    """summary.parquet (+ Markdown) with bootstrap intervals, and the search trace."""
    from cofitune.scores import bootstrap, item_scores_by_task
    from cofitune.tables import markdown_report, search_trace_table, summary_table

    candidates = io.read_parquet(candidates_file)
    ids = candidates.column("candidate").to_pylist()
    item_scores = item_scores_by_task(io.read_parquet(samples_file).to_pylist())
    intervals = bootstrap(item_scores, ids, evaluation["speciality"], evaluation["groups"], evaluation["rank_format"],
                          {"base": "base", "full_sft": "full_sft"}, seed=seed)
    summary = summary_table(candidates, intervals, final_id)
    io.write_parquet(summary_out, summary)
    io.write_text(markdown_out, markdown_report(summary) + "\n")
    io.write_parquet(trace_out, search_trace_table([io.read_json(p) for p in level_files]))


def plot_results(summary_file: str | Path, train_metrics_files: Sequence[str | Path], rank_format: str, tradeoff_out: str | Path, loss_out: str | Path) -> None:
    from cofitune.plots import loss_curves, tradeoff_scatter

    with io.atomic_path(tradeoff_out) as tmp:
        tradeoff_scatter(io.read_parquet(summary_file).to_pylist(), tmp, rank_format)
    histories = {}
    for path in train_metrics_files:
        record = io.read_json(path)
        histories[record["candidate"]] = record["history"]
    with io.atomic_path(loss_out) as tmp:
        loss_curves(histories, tmp)
