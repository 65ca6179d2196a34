"""Step time and peak memory of full SFT versus `ffn` in [0.25, 0.5), same model and batch, one run.

Each configuration runs in its own child process (so peak RSS is its own); the parent writes
bench/results/step_time_<model>_<precision>.{parquet,md}. GPU: peak memory is torch.cuda.max_memory_allocated.

    python bench/step_time.py [--model default|tiny] [--steps 6] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from cofitune import regions
from cofitune.candidates import candidate_from_spec
from cofitune.modeling import ModelSource, load_source
from cofitune.stages import resolve_precision
from cofitune.train import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, write_results

CONFIGS = {"full_sft": {"layers": "all", "modules": "all"}, "0.25-0.5_ffn": {"layers": "q2", "modules": "ffn"}}


def measure(model_key: str, candidate_id: str, steps: int, warmup: int, batch: int, seq: int, precision: str) -> dict:
    from accelerate import Accelerator

    model, tokenizer = load_source(ModelSource.from_config(MODELS[model_key]))
    names = candidate_from_spec(CONFIGS[candidate_id]).trainable_names(model)
    regions.freeze_all_but(model, names)
    generator = torch.Generator().manual_seed(0)
    rows = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, len(tokenizer), (batch * (steps + warmup), seq), generator=generator).tolist()]
    settings = TrainSettings(learning_rate=1e-5, max_steps=steps + warmup, micro_batch_size=batch, log_every_steps=10**9)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    accelerator = Accelerator(mixed_precision=resolve_precision(precision), cpu=device == "cpu")
    stamps = []
    train(model.to(device), rows, settings, accelerator, pad_id=tokenizer.pad_token_id, on_step=lambda s, r: stamps.append(time.perf_counter()))
    per_step = [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:], strict=False)]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "candidate": candidate_id,
        "trainable_params": regions.count_parameters(model, names),
        "trainable_fraction": regions.count_parameters(model, names) / regions.count_parameters(model),
        "step_seconds_median": sorted(per_step)[len(per_step) // 2],
        "step_seconds_mean": sum(per_step) / len(per_step),
        "peak_memory_mib": peak,
        "memory_kind": "cuda_max_allocated" if device == "cuda" else "process_max_rss",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.child, args.steps, args.warmup, args.batch, args.seq, args.precision)))
        return
    rows = []
    for candidate_id in CONFIGS:
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", candidate_id], capture_output=True, text=True, check=True)
        rows.append({**json.loads(child.stdout.strip().splitlines()[-1]), "model": args.model, "batch": args.batch, "seq": args.seq,
                     "precision": args.precision, "host": f"{platform.node()} {platform.processor() or platform.machine()}",
                     "threads": torch.get_num_threads(), "device": "cuda" if torch.cuda.is_available() else "cpu"})
    full, ffn = rows
    ratio_time = ffn["step_seconds_median"] / full["step_seconds_median"]
    ratio_mem = ffn["peak_memory_mib"] / full["peak_memory_mib"]
    lines = [
        f"# Step time: full SFT vs ffn in [0.25, 0.5) ({args.model} model, batch {args.batch} x {args.seq} tokens, {args.precision}, {rows[0]['device']}, {rows[0]['threads']} threads)",
        "",
        "| candidate | trainable | median step s | peak MiB |",
        "|---|---|---|---|",
        *[f"| {r['candidate']} | {r['trainable_fraction']:.1%} | {r['step_seconds_median']:.3f} | {r['peak_memory_mib']:.0f} |" for r in rows],
        "",
        f"ffn/full step-time ratio: {ratio_time:.2f}; peak-memory ratio: {ratio_mem:.2f}",
    ]
    write_results(f"step_time_{args.model}_{args.precision}", rows, lines)


if __name__ == "__main__":
    main()
