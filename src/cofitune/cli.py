"""Command-line entry points. `train` is what the workflow runs under `accelerate launch`:

    accelerate launch --config_file workflow/accelerate/cpu.yaml -m cofitune.cli train ...

JSON-valued options carry config sections verbatim, so no config string is ever parsed by a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


@contextlib.contextmanager
def logged_to(path: str | Path) -> Iterator[None]:
    """Send stdout, stderr and logging of a workflow script to its Snakemake log file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1, encoding="utf-8") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=handle, force=True)
        yield


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cofitune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="selective SFT of one candidate (run it under accelerate launch)")
    train.add_argument("--model-dir", required=True, help="prepared base model folder")
    train.add_argument("--data-dir", required=True, help="tokenized training data (prepare_data output)")
    train.add_argument("--candidate", required=True, type=_json, help='JSON, e.g. {"layers": "q2", "modules": "ffn"}')
    train.add_argument("--training", required=True, type=_json, help="JSON of the config's training section")
    train.add_argument("--module-sets", type=_json, default={}, help="JSON: module set name -> roles")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--out-dir", required=True)
    train.add_argument("--importance", help="combined importance (safetensors), for soft-masked candidates")
    train.add_argument("--softmask-parts", type=_json, default='"auto"', help='JSON: "auto" or a list of parts')

    importance = sub.add_parser("importance", help="estimate head and neuron importance of one source (run it under accelerate launch)")
    importance.add_argument("--model-dir", required=True)
    importance.add_argument("--files", required=True, type=_json, help="JSON list of JSONL files (SFT form)")
    importance.add_argument("--settings", required=True, type=_json, help="JSON of the config's importance section")
    importance.add_argument("--seed", type=int, default=1234)
    importance.add_argument("--out", required=True, help="output .safetensors")

    prepare = sub.add_parser("prepare-model", help="materialise a base model as a local safetensors folder")
    prepare.add_argument("--model", required=True, type=_json, help='JSON of the config\'s model section, e.g. {"name_or_path": "gpt2"}')
    prepare.add_argument("--seed", type=int, default=1234)
    prepare.add_argument("--out-dir", required=True)

    merge = sub.add_parser("merge", help="write a full Hugging Face folder: base model plus trained tensors")
    merge.add_argument("--model-dir", required=True)
    merge.add_argument("--trained", required=True, help="trained.safetensors of a candidate")
    merge.add_argument("--out-dir", required=True)

    summary = sub.add_parser("summary", help="print the summary table as Markdown")
    summary.add_argument("table", help="results/tables/summary.parquet")

    tasks = sub.add_parser("task-scores", help="print each task's score with a 95%% bootstrap interval over its items")
    tasks.add_argument("samples", nargs="+", help="samples.parquet files (results/eval/<candidate>/ or results/tables/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from cofitune import stages

    if args.command == "train":
        stages.train_candidate(
            args.model_dir, args.data_dir, args.candidate, args.training, args.seed, args.out_dir, args.module_sets,
            args.importance, args.softmask_parts,
        )
    elif args.command == "importance":
        stages.estimate_importance(args.model_dir, args.files, args.settings, args.seed, args.out)
    elif args.command == "prepare-model":
        stages.prepare_model(args.model, args.out_dir, args.seed)
    elif args.command == "merge":
        stages.merge(args.model_dir, args.trained, args.out_dir)
    elif args.command == "summary":
        from cofitune.io import read_parquet
        from cofitune.tables import markdown_report

        print(markdown_report(read_parquet(args.table)))
    elif args.command == "task-scores":
        from cofitune.io import read_parquet
        from cofitune.scores import item_scores_by_task, task_intervals
        from cofitune.tables import task_scores_markdown

        rows = [row for path in args.samples for row in read_parquet(path).to_pylist()]
        print(task_scores_markdown(task_intervals(item_scores_by_task(rows))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
