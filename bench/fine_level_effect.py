"""How much the fine level moves the update, on a finished run's chosen region: the soft-mask applied
to the optimizer's step (`softmask.apply: update`) against applied to the gradient (the reference).

Reads the run's results folder: the base model, the CoFiTune model's trained tensors (trained with
the run's `softmask.apply`) and its region unmasked (same seed), and trains the same region once
more with the other mode through the training stage (same data, seed and settings). Per masked
tensor it reports |masked - unmasked| / |unmasked - base| (Frobenius norms: how far the mask moved
the weights, relative to the update), and per output unit (row) the ratio of the masked update's
norm to the unmasked one's, correlated with the unit's factor 1 - I (Pearson and Spearman over all
rows of the masked tensors). Results: bench/results/fine_level_effect.{parquet,md}.

    python bench/fine_level_effect.py --results results --config config.yaml
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from cofitune import io, regions
from cofitune.candidates import candidate_from_spec, spec_from_id, unmasked_region
from cofitune.masking import APPLY_MODES, resolve_parts, row_scales
from cofitune.modeling import load_prepared
from cofitune.provenance import package_versions
from cofitune.records import TrainRecord
from cofitune.stages.common import load_importance
from cofitune.stages.train import TRAIN_METRICS_FILE, TRAINED_FILE, train_candidate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results


def final_id(results: Path) -> str:
    summary = io.read_parquet(results / "tables" / "summary.parquet").to_pylist()
    return next(r["candidate"] for r in summary if r["cofitune"])


def row_view(tensor: torch.Tensor, transposed: bool) -> torch.Tensor:
    """Output units as rows (GPT-2's Conv1D keeps them in columns); biases as one-entry rows."""
    if tensor.ndim == 1:
        return tensor.unsqueeze(1)
    return tensor.T if transposed else tensor


def effect(base: dict, unmasked: dict, masked: dict, factors: dict, transposed: bool) -> dict:
    ratios, row_ratios, row_factors = [], [], []
    for name, scale in factors.items():
        update = unmasked[name] - base[name]
        ratios.append(float((masked[name] - unmasked[name]).norm() / update.norm()))
        masked_rows = row_view(masked[name] - base[name], transposed).norm(dim=1)
        plain_rows = row_view(update, transposed).norm(dim=1)
        keep = plain_rows > 0
        row_ratios += (masked_rows[keep] / plain_rows[keep]).tolist()
        row_factors += scale.flatten()[keep].tolist()
    x, y = np.asarray(row_factors), np.asarray(row_ratios)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    return {
        "median_rel_change": statistics.median(ratios), "tensors": len(ratios), "rows": len(y),
        "mean_row_ratio": float(y.mean()), "mean_factor": float(x.mean()),
        "pearson_row_ratio_factor": float(np.corrcoef(x, y)[0, 1]), "spearman_row_ratio_factor": float(np.corrcoef(rank(x), rank(y))[0, 1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="the run's config (its training and softmask sections)")
    args = parser.parse_args()
    config = io.read_yaml(args.config)
    results, masked_id = args.results, final_id(args.results)
    unmasked_id = unmasked_region(masked_id)
    record = TrainRecord.read(results / "train" / masked_id / TRAIN_METRICS_FILE)
    run_mode = record.softmask_apply
    other = next(m for m in APPLY_MODES if m != run_mode)
    model, _ = load_prepared(results / "model" / "base")
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained = {run_mode: io.load_tensors(results / "train" / masked_id / TRAINED_FILE)}
    with tempfile.TemporaryDirectory() as scratch:
        train_candidate(results / "model" / "base", results / "data" / "train", {**spec_from_id(masked_id), "id": masked_id},
                        config["training"], record.seed, scratch, config.get("module_sets") or {}, results / "importance" / "combined.safetensors",
                        config.get("softmask", {}).get("parts", "auto"), softmask_apply=other)
        trained[other] = io.load_tensors(Path(scratch) / TRAINED_FILE)
    unmasked = io.load_tensors(results / "train" / unmasked_id / TRAINED_FILE)
    names = sorted(unmasked)
    candidate = candidate_from_spec(spec_from_id(masked_id))
    parts = resolve_parts(config.get("softmask", {}).get("parts", "auto"), model, candidate.trainable_names(model, config.get("module_sets")))
    factors = row_scales(model, load_importance(results / "importance" / "combined.safetensors"), names, parts)
    transposed = regions.family_of(model).transposed
    rows = [{"mode": mode, "candidate": masked_id, "reference": unmasked_id, "seed": record.seed,
             **effect(base, unmasked, trained[mode], factors, transposed)} for mode in APPLY_MODES]
    host = f"{platform.node()} {platform.machine()}"
    lines = [
        f"# The fine level's effect on the update: {masked_id} vs {unmasked_id} (seed {record.seed}, {results})",
        "",
        "| softmask.apply | median over masked tensors of \\|masked - unmasked\\| / \\|unmasked - base\\| | mean row update ratio "
        "(masked / unmasked) | mean factor 1 - I | Pearson (row ratio, factor) | Spearman |",
        "|---|---|---|---|---|---|",
        *(f"| {r['mode']} | {r['median_rel_change']:.3f} ({r['tensors']} tensors) | {r['mean_row_ratio']:.3f} | {r['mean_factor']:.3f} | "
          f"{r['pearson_row_ratio_factor']:.3f} | {r['spearman_row_ratio_factor']:.3f} |" for r in rows),
        "",
        f"The run trained {masked_id} with `{run_mode}`; this script trained it again with `{other}`. host: {host}; versions: "
        f"{json.dumps(package_versions(), sort_keys=True)}",
    ]
    for r in rows:
        r["host"] = host
    write_results("fine_level_effect", rows, lines)


if __name__ == "__main__":
    main()
