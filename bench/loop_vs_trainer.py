"""Optimizer-step time of our loop (`cofitune.training.loop.train`) versus transformers' `Trainer`, same model,
frozen set, batch and optimizer settings, for full SFT and for `ffn` in [0.25, 0.5).

Each (configuration, arm, round) runs in its own child process on a freshly loaded model, and the
arms are interleaved in rounds (loop, Trainer, loop, Trainer, ...) so drift in machine load hits
both. Every arm sees the same rows, in the same order:
- `--data synthetic`: `--seq` random tokens, labels == input_ids (loss on all tokens), no padding;
  the math of both arms is the same (our cross-entropy equals torch's bit for bit, computed in the
  logits' own buffer: `cofitune.training.loss`), so this measures what the loops do around it.
- `--data default`: the default run's training rows (config.yaml's speciality files through our
  tokenizer: chat template, response-only loss, max_length 224), what a user trains on. The
  Trainer pads each batch to its longest row (labels -100 on prompts and padding, as TRL's
  completion-only collator does); our loop also runs a third arm, `loop_unsplit`, with
  `length_split_tokens: null`, so the saving of length-split micro-batches is measured in the
  same run. A step is timed from one step's end to the next (our loop:
`on_step`; the Trainer: a `TrainerCallback.on_step_end`), so both include loading the next batch;
the first `--warmup` steps of every child are dropped. The Trainer keeps its default optimizer
(`TrainingArguments.optim`, recorded in the results) with our AdamW settings.

On a shared machine another process's load slows a step several-fold (two processes' OpenMP threads
on the same cores), so every step records the share of the CPUs other processes used during it
(from /proc/stat, Linux); steps above `--max-other-load` are left out of the medians and counted,
and before each child the parent waits (up to `--wait-quiet` seconds) for the machine to be idle.

Results: bench/results/loop_vs_trainer_<model>[_<data>].{parquet,md}, with host and versions.
ratio = Trainer median / loop median (> 1: our loop is faster).

    python bench/loop_vs_trainer.py [--model default|tiny] [--data synthetic|default] [--steps 4] [--rounds 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cofitune.infra.provenance import package_versions
from cofitune.methods.candidates import candidate_from_spec
from cofitune.models import regions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODELS, load_model, write_results

CONFIGS = {"full_sft": {"layers": "all", "modules": "all"}, "0.25-0.5_ffn": {"layers": "q2", "modules": "ffn"}}
ARMS = {"synthetic": ("loop", "trainer"), "default": ("loop", "loop_unsplit", "trainer")}
LEARNING_RATE = 1e-5


def cpu_clock() -> tuple[float, float | None, float]:
    """(wall seconds, CPU seconds every process on the machine used, CPU seconds this process used);
    the middle one is None where /proc/stat cannot be read."""
    wall, own = time.perf_counter(), time.process_time()
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:8]]
    except OSError:
        return wall, None, own
    return wall, (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), own  # minus idle and iowait


def other_load(before: tuple, after: tuple) -> float:
    """Share of all CPUs that other processes used between two `cpu_clock` readings (nan if unknown)."""
    if before[1] is None or after[1] is None:
        return float("nan")
    other = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, other) / ((after[0] - before[0]) * (os.cpu_count() or 1))


def wait_quiet(max_seconds: float, threshold: float, window: float = 5.0) -> float:
    """Wait until two consecutive windows see other processes below `threshold` of the CPUs; the seconds waited."""
    start, quiet = time.perf_counter(), 0
    while quiet < 2 and time.perf_counter() - start < max_seconds:
        before = cpu_clock()
        time.sleep(window)
        load = other_load(before, cpu_clock())
        quiet = quiet + 1 if not load > threshold else 0  # nan (no /proc/stat): nothing to wait for
    return time.perf_counter() - start


def synthetic_rows(vocab: int, n: int, seq: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (n, seq), generator=generator).tolist()
    return [{"input_ids": row, "attention_mask": [1] * seq, "labels": row} for row in ids]


def default_rows(tokenizer, n: int) -> list[dict]:
    """The first `n` rows of the default run's data order: config.yaml's speciality files, tokenized
    as prepare_data does, shuffled with its seed."""
    from cofitune.data.sft import tokenize_examples, validate_file
    from cofitune.infra import io

    config = io.read_yaml(Path(__file__).resolve().parents[1] / "config.yaml")
    training = config["training"]
    examples = [e for path in config["speciality"]["train"] for e in validate_file(Path(__file__).resolve().parents[1] / path)]
    rows, _ = tokenize_examples(tokenizer, examples, training["max_length"], training.get("loss_on", "response"),
                                training.get("truncation", "left"))
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(config.get("seed", 1234))).tolist()
    return [rows[i] for i in order[:n]]


def pad_batch(pad_id: int):
    """The Trainer's collator: right-pad to the batch's longest row, labels -100 on the padding."""
    from cofitune.data.sft import collate

    return lambda rows: collate(rows, pad_id)


def run_loop(model, tokenizer, rows, n_steps: int, batch: int, split: bool = True) -> tuple[list[tuple], float]:
    from accelerate import Accelerator

    from cofitune.training.loop import TrainSettings, train

    settings = TrainSettings(learning_rate=LEARNING_RATE, max_steps=n_steps, micro_batch_size=batch, log_every_steps=10**9,
                             **({} if split else {"length_split_tokens": None}))
    stamps: list[tuple] = []
    result = train(model, rows, settings, Accelerator(cpu=True), pad_id=tokenizer.pad_token_id,
                   on_step=lambda s, r: stamps.append(cpu_clock()))
    return stamps, statistics.fmean(r["loss"] for r in result.history)


def loop_order(rows: list[dict], n_steps: int, batch: int) -> list[dict]:
    """The rows in the order our loop draws them (`step_example_indices`), so both arms run the same batches."""
    from cofitune.training.loop import TrainSettings, step_example_indices

    seed = TrainSettings().seed
    return [rows[i] for step in range(n_steps) for i in step_example_indices(step, len(rows), batch, seed)]


def _in_order_trainer():
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    class InOrderTrainer(Trainer):
        """The Trainer with its shuffling off: the rows come already in our loop's order."""

        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    return InOrderTrainer


def run_trainer(model, tokenizer, rows, n_steps: int, batch: int) -> tuple[list[tuple], float, str]:
    from transformers import TrainerCallback, TrainingArguments

    InOrderTrainer = _in_order_trainer()
    stamps: list[tuple] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(cpu_clock())

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=n_steps, per_device_train_batch_size=batch, learning_rate=LEARNING_RATE,
            adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, weight_decay=0.1, max_grad_norm=1.0,
            lr_scheduler_type="cosine", bf16=False, fp16=False, use_cpu=True, eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to="none", dataloader_num_workers=0, disable_tqdm=True, seed=1234,
        )
        trainer = InOrderTrainer(model=model, args=args, train_dataset=loop_order(rows, n_steps, batch), callbacks=[StepClock()],
                                 data_collator=pad_batch(tokenizer.pad_token_id))
        output = trainer.train()
    return stamps, float(output.training_loss), str(args.optim)


def measure(model_key: str, data: str, candidate_id: str, arm: str, steps: int, warmup: int, batch: int, seq: int) -> dict:
    model, tokenizer = load_model(model_key)
    names = candidate_from_spec(CONFIGS[candidate_id]).trainable_names(model)
    regions.freeze_all_but(model, names)
    n_rows = batch * (warmup + steps)
    rows = synthetic_rows(len(tokenizer), n_rows, seq) if data == "synthetic" else default_rows(tokenizer, n_rows)
    optim = "cofitune.training.loop.build_optimizer"
    if arm in ("loop", "loop_unsplit"):
        stamps, loss = run_loop(model, tokenizer, rows, warmup + steps, batch, split=arm == "loop")
    else:
        stamps, loss, optim = run_trainer(model, tokenizer, rows, warmup + steps, batch)
    if len(stamps) != warmup + steps:
        raise RuntimeError(f"{arm} ran {len(stamps)} steps, not {warmup + steps}")
    if warmup == 0:
        raise ValueError("--warmup must be >= 1: a step is timed from the previous step's end")
    pairs = list(zip(stamps[warmup - 1 : -1], stamps[warmup:], strict=True))
    ordered = loop_order(rows, warmup + steps, batch)
    padded = [max(len(r["input_ids"]) for r in ordered[i : i + batch]) * batch for i in range(0, len(ordered), batch)]
    return {"candidate": candidate_id, "arm": arm, "step_seconds": [b[0] - a[0] for a, b in pairs],
            "input_tokens": sum(len(r["input_ids"]) for r in rows), "tokens_padded_to_batch": sum(padded),
            "other_load": [other_load(a, b) for a, b in pairs], "mean_loss": loss, "optimizer": optim,
            "trainable_fraction": regions.count_parameters(model, names) / regions.count_parameters(model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--data", choices=sorted(ARMS), default="synthetic")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="steps dropped at the start of every child (>= 1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128, help="tokens per row (synthetic data)")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--max-other-load", type=float, default=0.05,
                        help="leave out steps during which other processes used more than this share of the CPUs")
    parser.add_argument("--wait-quiet", type=float, default=300, help="seconds to wait at most for an idle machine before each child")
    parser.add_argument("--child", nargs=2, metavar=("CANDIDATE", "ARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        candidate_id, arm = args.child
        print(json.dumps(measure(args.model, args.data, candidate_id, arm, args.steps, args.warmup, args.batch, args.seq)))
        return
    results = run_children(args)
    rows = summarise(args, results)
    write_results(f"loop_vs_trainer_{args.model}" + ("" if args.data == "synthetic" else f"_{args.data}"), rows, report(args, rows))


def run_children(args) -> dict[tuple[str, str], list[dict]]:
    """Every (configuration, round, arm) in its own child, arms interleaved within each round."""
    results: dict[tuple[str, str], list[dict]] = {}
    for candidate_id in args.configs:
        for round_ in range(args.rounds):
            for arm in ARMS[args.data]:
                wait_quiet(args.wait_quiet, args.max_other_load)
                child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", candidate_id, arm], capture_output=True, text=True)
                if child.returncode:
                    sys.exit(f"{candidate_id} {arm} round {round_ + 1} failed:\n{child.stderr[-4000:]}")
                out = json.loads(child.stdout.strip().splitlines()[-1])
                results.setdefault((candidate_id, arm), []).append(out)
                print(f"{candidate_id} {arm} round {round_ + 1}: "
                      + " ".join(f"{s:.3f}" + ("*" if load > args.max_other_load else "") for s, load in zip(out["step_seconds"], out["other_load"], strict=True))
                      + " (*: left out, other processes' load)", file=sys.stderr)
    return results


def summarise(args, results: dict[tuple[str, str], list[dict]]) -> list[dict]:
    host = f"{platform.node()} {platform.processor() or platform.machine()}"
    versions = json.dumps(package_versions(), sort_keys=True)

    def clean(run: dict) -> list[float]:
        return [s for s, load in zip(run["step_seconds"], run["other_load"], strict=True) if not load > args.max_other_load]

    rows = []
    for (candidate_id, arm), runs in results.items():
        steps = [s for run in runs for s in clean(run)]
        if not steps:
            sys.exit(f"{candidate_id} {arm}: every step ran while other processes loaded the machine; rerun when it is idle")
        rows.append({
            "model": args.model, "data": args.data, "candidate": candidate_id, "arm": arm, "optimizer": runs[0]["optimizer"],
            "trainable_fraction": runs[0]["trainable_fraction"], "step_seconds_median": statistics.median(steps),
            "step_seconds_mean": statistics.fmean(steps), "step_seconds": steps,
            "round_medians": [statistics.median(clean(run)) if clean(run) else float("nan") for run in runs], "steps": len(steps),
            "steps_left_out": sum(len(run["step_seconds"]) for run in runs) - len(steps),
            "other_load_all_steps": [load for run in runs for load in run["other_load"]], "max_other_load": args.max_other_load,
            "rounds": args.rounds, "mean_loss": statistics.fmean(run["mean_loss"] for run in runs), "batch": args.batch,
            "input_tokens": runs[0]["input_tokens"], "tokens_padded_to_batch": runs[0]["tokens_padded_to_batch"],
            "seq": args.seq if args.data == "synthetic" else None, "precision": "fp32", "device": "cpu",
            "threads": torch.get_num_threads(), "host": host, "versions": versions,
        })
    return rows


def report(args, rows: list[dict]) -> list[str]:
    by = {(r["candidate"], r["arm"]): r for r in rows}
    data = (f"synthetic rows of {args.seq} tokens, loss on all tokens" if args.data == "synthetic" else
            "the default run's training rows, loss on the response")
    first = rows[0]
    lines = [
        f"# Our loop vs transformers' Trainer: optimizer-step time ({args.model} model, batch {args.batch}, {data}, fp32, cpu, "
        f"{first['threads']} threads; {args.rounds} interleaved rounds x {args.steps} steps per arm)",
        "",
        f"Rows: {first['input_tokens']:,} tokens, {first['tokens_padded_to_batch']:,} when each batch is padded to its longest row.",
        "",
        "| candidate | trainable | arm | median s | Trainer/arm | round medians | steps kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for candidate_id in args.configs:
        trainer = by[(candidate_id, "trainer")]
        for arm in ARMS[args.data]:
            row = by[(candidate_id, arm)]
            lines.append(f"| {candidate_id} | {row['trainable_fraction']:.1%} | {arm} | {row['step_seconds_median']:.3f} | "
                         f"{trainer['step_seconds_median'] / row['step_seconds_median']:.2f}x | "
                         f"{' '.join(f'{s:.2f}' for s in row['round_medians'])} | {row['steps']} |")
    lines += ["", "Trainer/arm > 1: that arm is faster than the Trainer. Steps during which other processes used more than "
              f"{args.max_other_load:.0%} of the CPUs are left out. Trainer optimizer: `{by[(args.configs[0], 'trainer')]['optimizer']}`; "
              "mean loss per arm: " + "; ".join(f"{c} " + " / ".join(f"{a} {by[(c, a)]['mean_loss']:.3f}" for a in ARMS[args.data])
                                                 for c in args.configs),
              "", f"host: {first['host']}; versions: {first['versions']}"]
    return lines


if __name__ == "__main__":
    main()
