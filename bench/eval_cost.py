"""What a search node's evaluation costs before and after the select split's cuts, measured side by
side on the default model (a trained region of a finished default run).

Arms, each one evaluation of the same model on the same select items (`evaluation.select`), run in
turn in one process (A B C A B C ...) so that drift in machine load hits all of them:
  before    every versatility format of `--formats` (plain and chat, the previous default), and the KL
            forgetting signal (which loads the base model a second time): what every evaluation job
            did before the split
  no_kl     every format, no KL: the KL cut alone is before - no_kl
  select    the ranking format only, no KL: what a search node's job does now (`eval_plan(SELECT)`);
            the format cut alone is no_kl - select
It also times loading the prepared base model (what the KL's second load costs) on its own.

Results: bench/results/eval_cost_<items>.{parquet,md}, with host and versions.

    python bench/eval_cost.py --results results [--candidate 0.5-1_mha+ffn] [--items 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from cofitune.configuration.evaluation import evaluation_settings
from cofitune.evaluation.settings import EvaluationSection
from cofitune.evaluation.splits import SELECT
from cofitune.infra.io import read_yaml
from cofitune.infra.provenance import package_versions
from cofitune.stages.common import load_candidate_model
from cofitune.stages.evaluate import eval_plan, kl_from_base

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results

ARMS = ("before", "no_kl", "select")


def run_arm(arm: str, model, tokenizer, results: Path, trained: Path, evaluation: EvaluationSection, all_formats: tuple[str, ...],
            kl_files: list[str]) -> float:
    from cofitune.evaluation.harness import evaluate_model

    plan = eval_plan(evaluation, results / "tasks", SELECT)
    if arm != "select":
        plan = dataclasses.replace(plan, formats=all_formats)
    start = time.perf_counter()
    evaluate_model(model, tokenizer, plan, device="cpu")
    if arm == "before":
        kl_from_base(model=model, tokenizer=tokenizer, model_dir=results / "model" / "base", trained_file=trained, files=kl_files,
                     evaluation=evaluation, device="cpu")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="a finished default run's results folder")
    parser.add_argument("--candidate", default="0.5-1_mha+ffn", help="a trained region of that run")
    parser.add_argument("--items", type=int, default=40, help="select items per task")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--formats", default="plain,chat", help="the formats of the 'before' and 'no_kl' arms")
    args = parser.parse_args()
    config = read_yaml("config.yaml")
    config["versatility"]["include_path"] = []
    evaluation = EvaluationSection.from_settings({**evaluation_settings({**config, "evaluation": {**config["evaluation"], "select": args.items}}),
                                                  "kl_examples": 64, "kl_max_length": 128})
    all_formats = tuple(args.formats.split(","))
    kl_files = [f for files in config["importance"]["sources"].values() for f in files]
    trained = args.results / "train" / args.candidate / "trained.safetensors"
    model, tokenizer = load_candidate_model(args.results / "model" / "base", trained)
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        load_candidate_model(args.results / "model" / "base", None)
        loads.append(time.perf_counter() - start)
    rows = []
    for round_ in range(args.rounds):
        for arm in ARMS:
            seconds = run_arm(arm, model, tokenizer, args.results, trained, evaluation, all_formats, kl_files)
            rows.append({"arm": arm, "round": round_, "seconds": seconds, "items": args.items, "candidate": args.candidate})
            print(f"round {round_} {arm}: {seconds:.1f} s", flush=True)
    median = {arm: statistics.median(r["seconds"] for r in rows if r["arm"] == arm) for arm in ARMS}
    host = f"{platform.node()} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [f"# A search node's evaluation: before and after the select split's cuts ({args.items} select items per task)", "",
             f"Host: {host}; versions: {json.dumps(package_versions(), sort_keys=True)}", "",
             f"Model: the default base model with `{args.candidate}` trained; formats {args.formats.split(',')}, "
             f"rank format {config['evaluation']['rank_format']}; {args.rounds} rounds, arms in turn, medians.", "",
             "| arm | what it scores | median s |", "|---|---|---|",
             f"| before | every format + KL (a second base load) | {median['before']:.1f} |",
             f"| no_kl | every format | {median['no_kl']:.1f} |",
             f"| select | the ranking format only (a search node's job now) | {median['select']:.1f} |", "",
             f"KL cut: {median['before'] - median['no_kl']:.1f} s; format cut: {median['no_kl'] - median['select']:.1f} s; "
             f"together {median['before'] - median['select']:.1f} s of {median['before']:.1f} s "
             f"(before / select = {median['before'] / median['select']:.2f}x).",
             f"Loading the prepared base model (the KL's second load): median {statistics.median(loads):.2f} s of 3 warm loads."]
    write_results(f"eval_cost_{args.items}", [*rows, *({"arm": "base_load", "round": i, "seconds": s, "items": 0,
                                                         "candidate": "base"} for i, s in enumerate(loads))], lines)


if __name__ == "__main__":
    main()
