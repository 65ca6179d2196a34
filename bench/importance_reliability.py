"""Is the importance signal or noise? Split-half reliability of the default importance estimate as
the data grows: for each `max_examples`, the stage the workflow runs (`estimate_importance`, the
default config's importance settings, data/importance/general.jsonl) estimates on two disjoint
halves; recorded per unit type: the median, minimum and maximum over layers of the halves' Spearman
correlation, the full estimate's reliability by Spearman-Brown (2r / (1 + r) of the median), and
the wall time. Results: bench/results/importance_reliability_<model>.{parquet,md}.

    python bench/importance_reliability.py --model default --examples 64 128 256
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from cofitune.fine.importance_file import read_importance
from cofitune.infra import io
from cofitune.infra.provenance import package_versions
from cofitune.stages.importance import estimate_importance
from cofitune.stages.model import prepare_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, write_results

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", choices=["default", "tiny"])
    parser.add_argument("--examples", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    config = io.read_yaml(REPO / "config.yaml")
    settings = {k: v for k, v in config["importance"].items() if k != "sources"}
    data = [REPO / p for p in config["importance"]["sources"]["general"]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prepare_model(MODELS[args.model], Path(tmp) / "model", seed=config["seed"])
        for examples in args.examples:
            start = time.perf_counter()
            out = Path(tmp) / f"importance_{examples}.safetensors"
            estimate_importance(model_dir=Path(tmp) / "model", files=data, settings={**settings, "max_examples": examples},
                                seed=config["seed"], out_file=out)
            seconds = time.perf_counter() - start
            for unit_type, rho in read_importance(out).split_half.items():
                rows.append(_row(args.model, examples, unit_type, rho, seconds))
    lines = [
        f"# Split-half reliability of importance ({args.model} model, {data[0].relative_to(REPO)}, default importance settings)",
        "",
        "Median [min, max] over layers of the Spearman correlation between the two halves' estimates; "
        "full = Spearman-Brown reliability of the whole estimate from the median.",
        "",
        "| examples | head | intermediate | output | seconds |",
        "|---|---|---|---|---|",
    ]
    for examples in args.examples:
        cells = {r["unit_type"]: r for r in rows if r["examples"] == examples}
        lines.append(f"| {examples} | " + " | ".join(
            f"{c['median']:.2f} [{c['min']:.2f}, {c['max']:.2f}], full {c['spearman_brown']:.2f}"
            for c in (cells["head"], cells["intermediate"], cells["output"])) + f" | {cells['head']['seconds']:.0f} |")
    lines.append(f"host: {rows[0]['host']}; versions: {rows[0]['versions']}")
    write_results(f"importance_reliability_{args.model}", rows, lines)


def _row(model: str, examples: int, unit_type: str, rho: torch.Tensor, seconds: float) -> dict:
    median = float(rho.nanmedian())
    return {"model": model, "examples": examples, "unit_type": unit_type, "median": median,
            "min": float(rho.nan_to_num(2.0).min()), "max": float(rho.nan_to_num(-2.0).max()),
            "spearman_brown": 2 * median / (1 + median), "seconds": seconds, "threads": torch.get_num_threads(),
            "host": f"{platform.node()} {platform.machine()} {platform.processor()}",
            "versions": json.dumps(package_versions(), sort_keys=True)}


if __name__ == "__main__":
    main()
