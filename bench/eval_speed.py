"""lm-eval multiple-choice scoring: HFLM versus the batched shared-prefix scorer, same model, items
and batch size, side by side in one run. Both score the same local task through `simple_evaluate`
(warm, alternating runs; each scorer's fastest counts). Recorded per scorer: items/s and accuracy;
per run: how many items both scorers answer alike and the largest log-likelihood difference. In
fp32 the accuracies and every item's answer must agree (exit status 1 otherwise, after the results
are written); in bf16 they are recorded only (different batch shapes round differently).
`--batch` is HFLM's batch size: sequences for HFLM, questions for the shared-prefix scorer.
Results: bench/results/eval_speed_<model>_<device>[_chat].{parquet,md}.

    python bench/eval_speed.py --model default --limit 100 --chat             # CPU, SmolLM2-135M
    python bench/eval_speed.py --model llama-1b-shape --device cuda --dtype bf16 --batch 16 --limit 180 --chat
                                               # one GPU: Llama-3.2-1B's shape, random weights (speed only)

`bash bench/gpu.sh bench` runs the GPU line among the other GPU measurements.
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
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM

from cofitune.evaluation.harness import shared_prefix_lm, task_manager
from cofitune.evaluation.tasks import multiple_choice_task
from cofitune.infra import io
from cofitune.infra.provenance import package_versions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, load_model, write_results

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="model weights (bf16: GPUs)")
    parser.add_argument("--task", default="vk_world")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--chat", action="store_true", help="apply the chat template (longer contexts)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per scorer, alternating; the fastest counts")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: cuda when available")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model, tokenizer = load_model(args.model)
    model.to(device, dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32).eval()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / f"{args.task}.jsonl"
        io.write_jsonl(data, [row for _, row in io.read_jsonl(REPO / "data" / "versatility" / f"{args.task}.jsonl")])
        io.write_yaml(Path(folder) / f"{args.task}.yaml", multiple_choice_task(args.task, data))
        manager = task_manager([folder], [args.task])
        scorers = {"hflm": HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch, device=device),
                   "shared_prefix": shared_prefix_lm(model, tokenizer, args.batch, device)}
        best: dict[str, tuple[float, dict]] = {}
        for _ in range(args.repeats):  # alternate, keep each scorer's fastest run: one-time costs hit neither
            for name, lm in scorers.items():
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                result = simple_evaluate(model=lm, tasks=[args.task], task_manager=manager, limit=args.limit, log_samples=True,
                                         apply_chat_template=args.chat, bootstrap_iters=0, cache_requests=False)
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, result)
        for name, (seconds, result) in best.items():
            items = int(result["n-samples"][args.task]["effective"])
            rows.append({"scorer": name, "seconds": seconds, "items": items, "items_per_s": items / seconds,
                         "acc": float(result["results"][args.task]["acc,none"]), "task": args.task, "chat": args.chat,
                         "model": args.model, "dtype": args.dtype, "batch": args.batch, "threads": torch.get_num_threads(),
                         "device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else "",
                         "host": f"{platform.node()} {platform.machine()} {platform.processor()}",
                         "versions": json.dumps(package_versions(), sort_keys=True), "repeats": args.repeats})
    answers = {name: _answers(result["samples"][args.task]) for name, (_, result) in best.items()}
    same = sum(answers["hflm"][doc][0] == answers["shared_prefix"][doc][0] for doc in answers["hflm"])
    gap = max(abs(a - b) for doc in answers["hflm"]
              for a, b in zip(answers["hflm"][doc][1], answers["shared_prefix"][doc][1], strict=True))
    for row in rows:
        row.update(same_answers=same, max_loglik_diff=gap)
    hflm, fast = rows
    lines = [
        f"# Multiple-choice scoring speed ({args.model} model, {args.task}, {args.limit} items, {'chat' if args.chat else 'plain'} format, batch {args.batch}, {device}, {rows[0]['threads']} threads)",
        "",
        "| scorer | seconds | items/s | acc |",
        "|---|---|---|---|",
        *[f"| {r['scorer']} | {r['seconds']:.1f} | {r['items_per_s']:.2f} | {r['acc']:.3f} |" for r in rows],
        "",
        f"speed-up: {fast['items_per_s'] / hflm['items_per_s']:.2f}x items/s (same accuracy: {hflm['acc'] == fast['acc']}; "
        f"same answer on {same}/{len(answers['hflm'])} items; largest log-likelihood difference {gap:.1e})",
        f"host: {rows[0]['host']} {rows[0]['gpu']}; versions: {rows[0]['versions']}",
    ]
    write_results(f"eval_speed_{args.model}_{device}{'_chat' if args.chat else ''}", rows, lines)
    if args.dtype == "fp32" and (hflm["acc"] != fast["acc"] or same != len(answers["hflm"])):
        sys.exit("the scorers disagree in fp32")


def _answers(samples) -> dict[int, tuple[int, list[float]]]:
    """doc id -> (index of the likeliest choice, every choice's log-likelihood)."""
    out = {}
    for sample in samples:
        logliks = [float(resp[0][0]) for resp in sample["resps"]]
        out[int(sample["doc_id"])] = (max(range(len(logliks)), key=logliks.__getitem__), logliks)
    return out


if __name__ == "__main__":
    main()
