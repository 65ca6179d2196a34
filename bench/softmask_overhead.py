"""Cost of the fine level, measured in one run on the same model, region and batches:

1. step-time overhead of soft-masked SFT versus unmasked SFT of the same region, for each place the
   factors act (`softmask.apply`): `update` (inside the optimizer's step, ScaledAdamW; target <= 2%)
   and `gradient` (a pass over the gradients before AdamW, the reference's);
2. the importance pass's cost relative to one SFT epoch over the same data.

The arms are interleaved (A B C A B C ...) so drift in machine load hits all of them.
Results: bench/results/softmask_overhead.{parquet,md}.

    python bench/softmask_overhead.py [--model default|tiny] [--steps 8] [--examples 64]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from cofitune.fine import importance, masking
from cofitune.infra.provenance import package_versions
from cofitune.models import regions
from cofitune.training.loop import TrainSettings, collate, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, load_model, write_results

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def synthetic_rows(vocab: int, n: int, seq: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (n, seq), generator=generator).tolist()
    return [{"input_ids": row, "labels": row} for row in ids]


def timed_steps(model, rows, settings, mask: masking.SoftMask | None) -> list[float]:
    stamps: list[float] = []
    start = time.perf_counter()
    transforms = mask.grad_transforms() if mask else []
    train(model, rows, settings, Accelerator(cpu=DEVICE == "cpu"), pad_id=0, grad_transform=transforms[0] if transforms else None,
          step_scales=mask.step_scales() if mask else None, on_step=lambda s, r: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--region", default="q2", help="layer range of the ffn region")
    parser.add_argument("--steps", type=int, default=8, help="measured steps per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=64, help="data for the importance-vs-epoch comparison")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()

    base, tokenizer = load_model(args.model)
    base.to(DEVICE)
    names = regions.select_parameters(base, regions.parse_layer_range(args.region), "ffn")
    rows = synthetic_rows(len(tokenizer), args.batch * (args.steps + 1), args.seq)
    settings = TrainSettings(learning_rate=1e-5, max_steps=args.steps + 1, micro_batch_size=args.batch, log_every_steps=10**9)

    torch.manual_seed(0)
    data = synthetic_rows(len(tokenizer), args.examples, args.seq)
    batches = [collate(data[i : i + args.batch], 0) for i in range(0, len(data), args.batch)]
    start = time.perf_counter()
    raw = importance.estimate(base, batches, importance.ImportanceSettings(batch_size=args.batch))
    importance_seconds = time.perf_counter() - start
    imp = {t: importance.normalise(v) for t, v in raw.items()}

    arms: dict[str, list[float]] = {"unmasked": [], **{mode: [] for mode in masking.APPLY_MODES}}
    for _ in range(args.rounds):
        for arm in arms:
            model = copy.deepcopy(base)
            regions.freeze_all_but(model, names)
            mask = masking.SoftMask(model, masking.row_scales(model, imp, names), arm) if arm != "unmasked" else None
            arms[arm] += timed_steps(model, rows, settings, mask)[1:]  # the first step warms up

    model = copy.deepcopy(base)
    regions.freeze_all_but(model, names)
    epoch_settings = TrainSettings(learning_rate=1e-5, epochs=1, micro_batch_size=args.batch, log_every_steps=10**9)
    start = time.perf_counter()
    train(model, data, epoch_settings, Accelerator(cpu=DEVICE == "cpu"), pad_id=0)
    epoch_seconds = time.perf_counter() - start

    medians = {arm: statistics.median(times) for arm, times in arms.items()}
    unmasked = medians["unmasked"]
    row = {
        "model": args.model, "region": f"{args.region} ffn", "batch": args.batch, "seq": args.seq, "threads": torch.get_num_threads(),
        "host": f"{platform.node()} {platform.machine()}", "device": DEVICE, "unmasked_step_s": unmasked,
        **{f"{mode}_step_s": medians[mode] for mode in masking.APPLY_MODES},
        **{f"{mode}_overhead": medians[mode] / unmasked - 1.0 for mode in masking.APPLY_MODES},
        "steps_per_arm": len(arms["unmasked"]), "importance_s": importance_seconds,
        "epoch_s": epoch_seconds, "importance_vs_epoch": importance_seconds / epoch_seconds, "examples": args.examples,
    }
    lines = [
        f"# Soft-mask cost ({args.model} model, ffn in {args.region}, batch {args.batch} x {args.seq} tokens, fp32 {DEVICE}, {row['threads']} threads)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| median step, unmasked ({row['steps_per_arm']} steps) | {unmasked:.3f} s |",
        *(f"| median step, soft-mask applied to the {mode} | {medians[mode]:.3f} s ({row[f'{mode}_overhead']:+.1%}) |"
          for mode in masking.APPLY_MODES),
        f"| importance pass over {args.examples} examples | {importance_seconds:.1f} s |",
        f"| one SFT epoch of the region over the same {args.examples} examples | {epoch_seconds:.1f} s |",
        f"| importance / epoch | {row['importance_vs_epoch']:.2f} |",
        "",
        f"host: {row['host']}; versions: {json.dumps(package_versions(), sort_keys=True)}",
    ]
    write_results("softmask_overhead" + ("_cuda" if DEVICE == "cuda" else ""), [row], lines)


if __name__ == "__main__":
    main()
