"""Rules `estimate_importance` (accelerate-launched: `python -m cofitune.stages.importance`),
`combine_importance` and `tabulate_importance`: the fine level's inputs and what people read."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cofitune.data.sft import collate, source_label, tokenize_examples, validate_file
from cofitune.fine.importance_file import Importance, read_importance, write_importance
from cofitune.infra import io
from cofitune.infra.logs import setup_logging
from cofitune.models.modeling import empty_model, load_prepared, load_tokenizer
from cofitune.models.sharding import ShardingSettings, materialise, shard_model
from cofitune.stages.common import build_accelerator, json_arg

log = logging.getLogger(__name__)


def estimate_importance(
    *, model_dir: str | Path, files: Sequence[str | Path | Mapping[str, Any]], settings: Mapping[str, Any], seed: int, out_file: str | Path,
    sharding: str = "none",
) -> None:
    """Raw and per-layer normalised importance of one source; data-parallel over processes, and the
    model sharded over them with FSDP2 when `sharding` is 'fsdp'."""
    from accelerate.utils import set_seed

    from cofitune.fine.importance import ImportanceSettings, normalise, pooled, split_half_reliability

    accelerator = build_accelerator("fp32")
    set_seed(seed)
    if sharding == "fsdp":  # built on the meta device; process 0 loads the weights and sends out the shards
        model, tokenizer = empty_model(model_dir), load_tokenizer(model_dir)
        shard_model(model, ShardingSettings("fsdp"), accelerator.device.type)
        materialise(model, model_dir, accelerator.device.type)
    else:
        model, tokenizer = load_prepared(model_dir)
        model.to(accelerator.device)
    examples = [ex for path in files for ex in validate_file(path)][: settings["max_examples"]]
    rows, _ = tokenize_examples(tokenizer, examples, settings["max_length"], loss_on="all", truncation="right")  # plain text: keep its start
    size = settings["batch_size"]
    batches = [{**collate(rows[i : i + size], tokenizer.pad_token_id), "seed": seed * 1_000_003 + i} for i in range(0, len(rows), size)]
    estimator = ImportanceSettings(**{k: settings[k] for k in ("dropout", "temperature", "accumulate", "batch_size")})
    # Two disjoint halves (even and odd batches), estimated apart and pooled: the same work as one
    # pass, and their agreement says whether the ranking is signal or noise.
    halves = [half for half in (batches[0::2], batches[1::2]) if half]
    mine = sum(len(half[accelerator.process_index :: accelerator.num_processes]) for half in halves)
    log.info("importance from %d examples in %d batches (%d on this process)", len(rows), len(batches), mine)
    parts = [(_estimate_share(model, half, estimator, accelerator, sharding), _tokens(half)) for half in halves]
    raw = pooled(parts)
    reliability = split_half_reliability(parts[0][0], parts[1][0]) if len(parts) == 2 else {}
    for unit_type, rho in reliability.items():
        log.info("split-half reliability of %s importance (Spearman per layer): median %.2f, min %.2f, max %.2f",
                 unit_type, float(rho.nanmedian()), float(rho.nan_to_num(2.0).min()), float(rho.nan_to_num(-2.0).max()))
    labels = [source_label(entry) for entry in files]
    for unit_type, values in raw.items():
        if not torch.isfinite(values).all():
            raise FloatingPointError(f"{unit_type} importance is NaN/inf: the model's outputs on {labels} are not finite "
                                     "(check the model's weights and importance.max_length)")
    if accelerator.is_main_process:
        importance = Importance(norm={t: normalise(v) for t, v in raw.items()}, raw=raw, split_half=reliability)
        write_importance(out_file, importance, metadata={"examples": str(len(rows)), "files": ",".join(labels)})
    accelerator.wait_for_everyone()


def _estimate_share(model, batches: Sequence[Any], estimator, accelerator, sharding: str) -> dict[str, torch.Tensor]:
    """Raw importance of `batches`, each process estimating its share and the processes summing."""
    from cofitune.fine.importance import estimate

    mine = batches[accelerator.process_index :: accelerator.num_processes]
    if sharding == "fsdp":  # every forward pass is collective: all processes make the same number of them
        mine += [{**batches[0], "weight": 0.0}] * (-(-len(batches) // accelerator.num_processes) - len(mine))
    return estimate(model, _progress(mine), estimator,
                    reduce=lambda t: accelerator.reduce(t, reduction="sum") if accelerator.num_processes > 1 else t)


def _tokens(batches: Sequence[Any]) -> float:
    return float(sum(b["attention_mask"].sum() for b in batches))


def _progress(batches: Sequence[Any]):
    for i, batch in enumerate(batches, start=1):
        if i == 1 or i % 10 == 0 or i == len(batches):
            log.info("importance batch %d/%d", i, len(batches))
        yield batch


def combine_importance(source_files: Sequence[str | Path], out_file: str | Path) -> None:
    from cofitune.fine.importance import combine

    write_importance(out_file, Importance(norm=combine([read_importance(p).norm for p in source_files])))


def tabulate_importance(
    *, sources: Sequence[str], source_files: Sequence[str | Path], combined_file: str | Path, table_out: str | Path, plot_dir: str | Path
) -> None:
    from cofitune.evidence.plots import importance_heatmap
    from cofitune.evidence.tables import importance_table

    per_source = {name: read_importance(path) for name, path in zip(sources, source_files, strict=True)}
    combined = read_importance(combined_file).norm
    io.write_parquet(table_out, importance_table(per_source, combined))
    for unit_type, values in combined.items():
        with io.atomic_path(Path(plot_dir) / f"importance_{unit_type}.png") as tmp:
            importance_heatmap(values, unit_type, tmp, reliability_note(per_source, unit_type))


def reliability_note(per_source: Mapping[str, Importance], unit_type: str) -> str:
    """'split-half reliability (median Spearman over layers): general 0.62' for a picture's title."""
    medians = [f"{name} {float(f.split_half[unit_type].nanmedian()):.2f}" for name, f in per_source.items()
               if unit_type in f.split_half]
    return f"split-half reliability (median Spearman over layers): {', '.join(medians)}" if medians else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofitune importance", description="estimate head and neuron importance of one source")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--files", required=True, type=json_arg, help="JSON list of the source's entries (paths, hf:org/name, or objects with options)")
    parser.add_argument("--settings", required=True, type=json_arg, help="JSON of the config's importance section")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", required=True, help="output .safetensors")
    parser.add_argument("--sharding", choices=["none", "fsdp"], default="none", help="the config's training.sharding")
    args = parser.parse_args(argv)
    setup_logging()
    estimate_importance(model_dir=args.model_dir, files=args.files, settings=args.settings, seed=args.seed, out_file=args.out,
                        sharding=args.sharding)
    return 0


if __name__ == "__main__":
    sys.exit(main())
