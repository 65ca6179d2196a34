"""How much the fine level moves the update, on a finished run's chosen region: the soft-mask applied
to the optimizer's step (`softmask.apply: update`) against applied to the gradient (the reference).

Reads a run's results folder (the base model, the tokenized data, the combined importance) and takes
the region's trainings the run made (its region unmasked, and soft-masked with the run's
`softmask.apply`); what the run did not make it trains here through the training stage with the
run's data, seed and settings: so both modes and the unmasked region share everything else. Per masked
tensor it reports |masked - unmasked| / |unmasked - base| (Frobenius norms: how far the mask moved
the weights, relative to the update), and per output unit (row) the ratio of the masked update's
norm to the unmasked one's, correlated with the unit's factor 1 - I (Pearson and Spearman over all
rows of the masked tensors). Results: bench/results/fine_level_effect.{parquet,md}.

    python bench/fine_level_effect.py --results results --config config.yaml [--candidate 0.5-0.75_mha+ffn_softmask]
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

from cofitune.configuration.sections import TrainingSection
from cofitune.fine.importance_file import read_importance
from cofitune.fine.masking import APPLY_MODES, SoftmaskSection, resolve_parts, row_scales
from cofitune.infra import io
from cofitune.infra.provenance import package_versions
from cofitune.infra.records import TrainRecord
from cofitune.methods.candidates import candidate_from_spec, spec_from_id, unmasked_region
from cofitune.models import regions
from cofitune.models.modeling import load_prepared
from cofitune.stages.train import train_candidate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results

# the workflow's layout of a training's outputs (results/train/<id>/)
TRAINED_FILE, TRAIN_METRICS_FILE = "trained.safetensors", "train_metrics.json"


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


def trained_weights(results: Path, candidate_id: str, apply: str | None, config: dict, seed: int, scratch: Path) -> dict:
    """The run's own trained tensors of `candidate_id` when it made them (with `apply`, for a masked
    one), else trained here through the training stage with the run's data, importance and settings."""
    own = results / "train" / candidate_id
    if (own / TRAIN_METRICS_FILE).is_file() and TrainRecord.read(own / TRAIN_METRICS_FILE).softmask_apply == (apply or ""):
        return io.load_tensors(own / TRAINED_FILE)
    out = scratch / f"{candidate_id}_{apply}"
    train_candidate(model_dir=results / "model" / "base", data_dir=results / "data" / "train",
                    candidate_spec={**spec_from_id(candidate_id), "id": candidate_id}, training=TrainingSection.from_config(config["training"], seed),
                    trained_out=out / TRAINED_FILE, metrics_out=out / TRAIN_METRICS_FILE, checkpoint_dir=out / "checkpoint", module_sets=config.get("module_sets") or {},
                    importance_file=results / "importance" / "combined.safetensors" if apply else None,
                    softmask=SoftmaskSection.from_config({**config.get("softmask", {}), "apply": apply or "update"}))
    return io.load_tensors(out / TRAINED_FILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="the run's config (its training and softmask sections)")
    parser.add_argument("--candidate", help="a soft-masked region id (default: the run's CoFiTune model)")
    args = parser.parse_args()
    config = io.read_yaml(args.config)
    results = args.results
    masked_id = args.candidate or final_id(results)
    unmasked_id = unmasked_region(masked_id)
    seed = int(config.get("seed", 1234))
    model, _ = load_prepared(results / "model" / "base")
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    with tempfile.TemporaryDirectory() as scratch:
        unmasked = trained_weights(results, unmasked_id, None, config, seed, Path(scratch))
        trained = {mode: trained_weights(results, masked_id, mode, config, seed, Path(scratch)) for mode in APPLY_MODES}
    names = sorted(unmasked)
    candidate = candidate_from_spec(spec_from_id(masked_id))
    parts = resolve_parts(config.get("softmask", {}).get("parts", "auto"), model, candidate.trainable_names(model, config.get("module_sets")))
    factors = row_scales(model, read_importance(results / "importance" / "combined.safetensors").norm, names, parts)
    transposed = regions.family_of(model).transposed
    rows = [{"mode": mode, "candidate": masked_id, "reference": unmasked_id, "seed": seed,
             **effect(base, unmasked, trained[mode], factors, transposed)} for mode in APPLY_MODES]
    host = f"{platform.node()} {platform.machine()}"
    lines = [
        f"# The fine level's effect on the update: {masked_id} vs {unmasked_id} (seed {seed}, the data and importance of {results})",
        "",
        "| softmask.apply | median over masked tensors of \\|masked - unmasked\\| / \\|unmasked - base\\| | mean row update ratio "
        "(masked / unmasked) | mean factor 1 - I | Pearson (row ratio, factor) | Spearman |",
        "|---|---|---|---|---|---|",
        *(f"| {r['mode']} | {r['median_rel_change']:.3f} ({r['tensors']} tensors) | {r['mean_row_ratio']:.3f} | {r['mean_factor']:.3f} | "
          f"{r['pearson_row_ratio_factor']:.3f} | {r['spearman_row_ratio_factor']:.3f} |" for r in rows),
        "",
        f"Each row's update ratio is |masked row - base row| / |unmasked row - base row| over {rows[0]['rows']} rows. host: {host}; "
        f"versions: {json.dumps(package_versions(), sort_keys=True)}",
    ]
    for r in rows:
        r["host"] = host
    write_results("fine_level_effect", rows, lines)


if __name__ == "__main__":
    main()
