"""Step time and peak memory of full SFT versus `ffn` in [0.25, 0.5), same model and batch, one run.

Each configuration runs in its own child process (so peak RSS is its own); the parent writes
bench/results/step_time_<model>_<precision>[_answer].{parquet,md}. GPU: peak memory is
torch.cuda.max_memory_allocated.

`--loss answer` puts the loss on the last `--answer-tokens` tokens of each row only (our speciality
data: short answers after a long prompt) and measures each configuration twice: with logits computed
at every position and at the target positions only (what `cofitune.training.loss.token_loss_sum` does).

    python bench/step_time.py [--model default|tiny|smollm2-shape] [--steps 6] [--precision bf16] [--loss answer]
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

from cofitune.methods.candidates import candidate_from_spec
from cofitune.models import regions
from cofitune.stages.common import resolve_precision
from cofitune.training.loop import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, load_model, write_results

CONFIGS = {"full_sft": {"layers": "all", "modules": "all"}, "0.25-0.5_ffn": {"layers": "q2", "modules": "ffn"}}


def measure(model_key: str, candidate_id: str, steps: int, warmup: int, batch: int, seq: int, precision: str,
            answer_tokens: int | None, all_logits: bool) -> dict:
    from accelerate import Accelerator

    from cofitune.training import loss as loss_module

    if all_logits:  # the loop's behaviour before target-position logits
        loss_module.accepts_logits_to_keep = lambda model: False
    model, tokenizer = load_model(model_key)
    names = candidate_from_spec(CONFIGS[candidate_id]).trainable_names(model)
    regions.freeze_all_but(model, names)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(tokenizer), (batch * (steps + warmup), seq), generator=generator).tolist()
    rows = [{"input_ids": row, "labels": row if answer_tokens is None else [-100] * (seq - answer_tokens) + row[-answer_tokens:]} for row in ids]
    settings = TrainSettings(learning_rate=1e-5, max_steps=steps + warmup, micro_batch_size=batch, log_every_steps=10**9)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    accelerator = Accelerator(mixed_precision=resolve_precision(precision), cpu=device == "cpu")
    stamps = []
    train(model.to(device), rows, settings, accelerator, pad_id=tokenizer.pad_token_id, on_step=lambda s, r: stamps.append(time.perf_counter()))
    per_step = [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:], strict=False)]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "candidate": candidate_id,
        "logits": "all positions" if all_logits else "target positions",
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
    parser.add_argument("--loss", default="all", choices=["all", "answer"], help="loss on every token, or on the last --answer-tokens")
    parser.add_argument("--answer-tokens", type=int, default=3)
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--all-logits", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    answer_tokens = args.answer_tokens if args.loss == "answer" else None
    if args.child:
        print(json.dumps(measure(args.model, args.child, args.steps, args.warmup, args.batch, args.seq, args.precision, answer_tokens, args.all_logits)))
        return
    variants = [["--all-logits"], []] if answer_tokens else [[]]
    rows = []
    for candidate_id in CONFIGS:
        for variant in variants:
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", candidate_id, *variant], capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"{candidate_id} {' '.join(variant)} failed:\n{child.stderr[-4000:]}")
            rows.append({**json.loads(child.stdout.strip().splitlines()[-1]), "model": args.model, "batch": args.batch, "seq": args.seq,
                         "loss_on": args.loss, "precision": args.precision, "host": f"{platform.node()} {platform.processor() or platform.machine()}",
                         "threads": torch.get_num_threads(), "device": "cuda" if torch.cuda.is_available() else "cpu"})
    full, ffn = rows[len(variants) - 1], rows[-1]
    lines = [
        f"# Step time: full SFT vs ffn in [0.25, 0.5) ({args.model} model, batch {args.batch} x {args.seq} tokens, "
        f"loss on {f'the last {answer_tokens} tokens' if answer_tokens else 'all tokens'}, {args.precision}, {rows[0]['device']}, {rows[0]['threads']} threads)",
        "",
        "| candidate | logits | trainable | median step s | peak MiB |",
        "|---|---|---|---|---|",
        *[f"| {r['candidate']} | {r['logits']} | {r['trainable_fraction']:.1%} | {r['step_seconds_median']:.3f} | {r['peak_memory_mib']:.0f} |" for r in rows],
        "",
        f"ffn/full step-time ratio: {ffn['step_seconds_median'] / full['step_seconds_median']:.2f}; "
        f"peak-memory ratio: {ffn['peak_memory_mib'] / full['peak_memory_mib']:.2f}",
    ]
    if answer_tokens:
        for candidate_id in CONFIGS:
            before, after = (r for r in rows if r["candidate"] == candidate_id)
            lines.append(f"{candidate_id}: target-position logits / all-position logits step time: "
                         f"{after['step_seconds_median'] / before['step_seconds_median']:.2f}")
    suffix = "_answer" if answer_tokens else ""
    write_results(f"step_time_{args.model}_{args.precision}{suffix}", rows, lines)


if __name__ == "__main__":
    main()
