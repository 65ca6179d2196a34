"""Command-line entry points: `cofitune train | importance | prepare-model | merge | summary | task-scores | plan-memory`.

`train` and `importance` are the accelerate-launched stages; the workflow runs them as modules,

    accelerate launch --config_file workflow/accelerate/cpu.yaml -m cofitune.stages.train ...

and `cofitune train ...` is the same command. JSON-valued options carry config sections verbatim,
so no config string is ever parsed by a shell.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

LAUNCHED = {"train": "cofitune.stages.train", "importance": "cofitune.stages.importance"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cofitune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="selective SFT of one candidate (run it under accelerate launch; --help for its options)", add_help=False)
    sub.add_parser("importance", help="head and neuron importance of one source (under accelerate launch; --help for its options)", add_help=False)

    prepare = sub.add_parser("prepare-model", help="materialise a base model as a local safetensors folder")
    prepare.add_argument("--model", required=True, type=json.loads, help='JSON of the config\'s model section, e.g. {"name_or_path": "gpt2"}')
    prepare.add_argument("--seed", type=int, default=1234)
    prepare.add_argument("--out-dir", required=True)

    merge = sub.add_parser("merge", help="write a full Hugging Face folder: base model plus trained tensors")
    merge.add_argument("--model-dir", required=True)
    merge.add_argument("--trained", required=True, help="trained.safetensors of a candidate")
    merge.add_argument("--out-dir", required=True)

    summary = sub.add_parser("summary", help="print the summary table as Markdown")
    summary.add_argument("table", help="results/tables/summary.parquet")

    memory = sub.add_parser("plan-memory", help="GiB per device to train a model shape: full SFT and the ffn region, FSDP2 over N devices")
    memory.add_argument("--shapes", nargs="+", default=["llama-8b", "llama-13b", "llama-70b"], help="llama-1b, llama-8b, llama-13b, llama-70b")
    memory.add_argument("--devices", nargs="+", type=int, default=[1, 8, 16])
    memory.add_argument("--device-gib", type=float, default=80.0)
    memory.add_argument("--micro-batch", type=int, default=1)
    memory.add_argument("--seq-len", type=int, default=2048)
    memory.add_argument("--activation-checkpointing", action="store_true")

    tasks = sub.add_parser("task-scores", help="print each task's score with a 95%% bootstrap interval over its items")
    tasks.add_argument("samples", nargs="+", help="samples.parquet files (results/eval/<candidate>/ or results/tables/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LAUNCHED:
        from importlib import import_module

        return import_module(LAUNCHED[argv[0]]).main(argv[1:])
    args = build_parser().parse_args(argv)
    from cofitune.infra.logs import setup_logging

    setup_logging()
    if args.command == "prepare-model":
        from cofitune.stages.model import prepare_model

        prepare_model(args.model, args.out_dir, args.seed)
    elif args.command == "merge":
        from cofitune.stages.model import merge

        merge(args.model_dir, args.trained, args.out_dir)
    elif args.command == "summary":
        from cofitune.evidence.claims import CLAIMS_FILE
        from cofitune.evidence.markdown import markdown_report
        from cofitune.infra.io import read_parquet

        claims = Path(args.table).with_name(CLAIMS_FILE)  # the workflow writes it beside the summary
        print(markdown_report(read_parquet(args.table), read_parquet(claims) if claims.is_file() else None))
    elif args.command == "plan-memory":
        from cofitune.infra.memory import FFN_Q2, FULL_SFT, SHAPES, memory_table

        print(memory_table([SHAPES[name] for name in args.shapes], args.devices, [FULL_SFT, FFN_Q2], args.device_gib,
                           micro_batch=args.micro_batch, seq_len=args.seq_len, activation_checkpointing=args.activation_checkpointing))
    elif args.command == "task-scores":
        from cofitune.evaluation.scores import item_scores_by_task, task_intervals
        from cofitune.evidence.markdown import task_scores_markdown
        from cofitune.infra.io import read_parquet

        rows = [row for path in args.samples for row in read_parquet(path).to_pylist()]
        print(task_scores_markdown(task_intervals(item_scores_by_task(rows))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
