"""lm-eval multiple-choice scoring: HFLM versus the shared-prefix scorer, same model and items, one run.

Both score the same local task through `simple_evaluate`; the accuracies must agree.
Results: bench/results/eval_speed.{parquet,md}.

    python bench/eval_speed.py [--model default|tiny] [--task vk_world] [--limit 100]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM

from cofitune import io
from cofitune.evaluate import shared_prefix_lm, task_manager
from cofitune.tasks import multiple_choice_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, load_model, write_results

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--task", default="vk_world")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--chat", action="store_true", help="apply the chat template (longer contexts)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_model(args.model)
    model.to(device).eval()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / f"{args.task}.jsonl"
        io.write_jsonl(data, [row for _, row in io.read_jsonl(REPO / "data" / "versatility" / f"{args.task}.jsonl")])
        io.write_yaml(Path(folder) / f"{args.task}.yaml", multiple_choice_task(args.task, data))
        manager = task_manager([folder], [args.task])
        for name, lm in (("hflm", HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch, device=device)),
                         ("shared_prefix", shared_prefix_lm(model, tokenizer, args.batch, device))):
            start = time.perf_counter()
            result = simple_evaluate(model=lm, tasks=[args.task], task_manager=manager, limit=args.limit,
                                     apply_chat_template=args.chat, bootstrap_iters=0, cache_requests=False)
            rows.append({"scorer": name, "seconds": time.perf_counter() - start, "acc": float(result["results"][args.task]["acc,none"]),
                         "items": args.limit, "task": args.task, "chat": args.chat, "model": args.model, "batch": args.batch,
                         "threads": torch.get_num_threads(), "device": device, "host": f"{platform.node()} {platform.machine()}"})
    hflm, fast = rows
    lines = [
        f"# Multiple-choice scoring speed ({args.model} model, {args.task}, {args.limit} items, {'chat' if args.chat else 'plain'} format, batch {args.batch}, {device}, {rows[0]['threads']} threads)",
        "",
        "| scorer | seconds | acc |",
        "|---|---|---|",
        *[f"| {r['scorer']} | {r['seconds']:.1f} | {r['acc']:.3f} |" for r in rows],
        "",
        f"speed-up: {hflm['seconds'] / fast['seconds']:.2f}x (same accuracy: {hflm['acc'] == fast['acc']})",
    ]
    write_results(f"eval_speed_{args.model}_{device}", rows, lines)


if __name__ == "__main__":
    main()
