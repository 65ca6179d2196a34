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


def train_candidate(
    model_dir: str | Path,
    data_dir: str | Path,
    candidate_spec: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
    out_dir: str | Path,
    module_sets: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Selective SFT of one candidate; writes only the trained tensors and train_metrics.json."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from cofitune.train import TrainSettings, train

    out_dir = Path(out_dir)
    candidate = candidate_from_spec(candidate_spec)
    settings = TrainSettings.from_config(dict(training), seed=seed)
    precision = resolve_precision(training.get("precision", "auto"))
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    set_seed(seed)
    model, tokenizer = load_prepared(model_dir)
    trainable = candidate.trainable_names(model, module_sets)
    regions.freeze_all_but(model, trainable)
    rows = load_training_rows(data_dir)
    fingerprint = settings.fingerprint({"candidate": candidate.describe(), "trainable": trainable, "precision": precision, "world": accelerator.num_processes})
    log.info("%s: training %d tensors (%d of %d parameters) on %d examples, %s, %d process(es)",
             candidate.id, len(trainable), regions.count_parameters(model, trainable), regions.count_parameters(model),
             len(rows), precision, accelerator.num_processes)
    result = train(
        model, rows, settings, accelerator, pad_id=tokenizer.pad_token_id,
        checkpoint_dir=out_dir / "checkpoint", fingerprint=fingerprint,
    )
    if accelerator.is_main_process:
        n_layers = len(regions.decoder_layers(model))
        io.save_tensors(out_dir / TRAINED_FILE, {n: p for n, p in model.named_parameters() if n in set(trainable)},
                        metadata={"candidate": candidate.id, "base": str(model_dir)})
        io.write_json(out_dir / TRAIN_METRICS_FILE, {
            **candidate.describe(),
            "layer_indices": candidate.layer_indices(n_layers),
            "trainable_tensors": len(trainable),
            "trainable_params": regions.count_parameters(model, trainable),
            "total_params": regions.count_parameters(model),
            "steps": result.steps,
            "resumed_from_step": result.resumed_from_step,
            "final_loss": result.final_loss,
            "input_tokens": result.input_tokens,
            "target_tokens": result.target_tokens,
            "wall_seconds": result.wall_seconds,
            "tokens_per_second": result.input_tokens / max(result.wall_seconds, 1e-9),
            "precision": precision,
            "processes": accelerator.num_processes,
            "seed": seed,
            "history": result.history,
        })
    accelerator.wait_for_everyone()


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
