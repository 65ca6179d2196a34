"""Live training curves through accelerate's trackers (`training.report_to`), not a logger of our own.

The loop's per-step record goes to TensorBoard, Weights & Biases or MLflow by `accelerator.log`; a
candidate's id, region, method, seed and settings fingerprint are the run's configuration. Every file
lands in one folder per candidate under the results folder (the Accelerator's `project_dir`, beside the
training's outputs, never inside them: the outputs and their content are the same with or without it):
  <folder>/cofitune/            TensorBoard: the run's events (hparams: a timestamped subfolder, accelerate's way)
  <folder>/wandb/               W&B, offline unless WANDB_MODE says otherwise (`wandb sync` uploads it)
  <folder>/mlruns/              MLflow's file store, unless MLFLOW_TRACKING_URI names another
Only the main process writes (accelerate's `on_main_process`). accelerate silently drops a tracker whose
package is missing, so `check_report_to` refuses one before any model is loaded, naming the config key.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cofitune.training.loop import StepLogger

PROJECT = "cofitune"  # accelerate's project name: TensorBoard's run folder, the W&B project, the MLflow experiment
CONFIG_KEY = "training.report_to"
# tracker -> (module accelerate imports, what to install)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard==2.21.0"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
}

def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_report_to(report_to: Sequence[str]) -> tuple[str, ...]:
    """The trackers to use, each known and importable; otherwise an error that names the key and the fix."""
    names = tuple(dict.fromkeys(report_to))
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        raise ValueError(f"{CONFIG_KEY}: unknown tracker(s) {', '.join(map(repr, unknown))}; known: {', '.join(TRACKERS)}")
    missing = [name for name in names if not _installed(TRACKERS[name][0])]
    if missing:
        pip = " ".join(TRACKERS[name][1] for name in missing)
        raise ValueError(f"{CONFIG_KEY} names {', '.join(missing)}, which is not installed in this environment: "
                         f"`pip install {pip}`, or remove it from {CONFIG_KEY}")
    return names


def scalar_config(values: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """Tracker configs take scalars only (TensorBoard's hparams, MLflow's params): lists become 'a,b', None ''."""
    def scalar(value: Any) -> str | int | float | bool:
        if value is None:
            return ""
        if isinstance(value, (str, int, float, bool)):
            return value
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value))
        return str(value)

    return {key: scalar(value) for key, value in values.items()}


def log_step(accelerator: Any, record: Mapping[str, float], seconds: float) -> None:
    """One optimizer step's curves, at the loop's 1-based step number (what TrainRecord.history holds)."""
    accelerator.log({
        "train/loss": float(record["loss"]),
        "train/learning_rate": float(record["lr"]),
        "train/grad_norm": float(record["grad_norm"]),
        "train/tokens_per_s": float(record["input_tokens"]) / max(seconds, 1e-9),
        "train/target_tokens": float(record["target_tokens"]),
    }, step=int(record["step"]))


class _Run:
    """The loop's step logger; it starts the trackers at the first step it is given, since only then is it
    known whether the training resumed (the loop decides that from its checkpoint)."""

    def __init__(self, accelerator: Any, report_to: Sequence[str], run_name: str, metadata: Mapping[str, Any]) -> None:
        self.accelerator, self.report_to, self.run_name, self.metadata = accelerator, report_to, run_name, metadata
        self.started = False

    def __call__(self, record: Mapping[str, float], seconds: float) -> None:
        if not self.started:
            self.start(int(record["step"]))
        log_step(self.accelerator, record, seconds)

    def start(self, first_step: int) -> None:
        """From step 1, the folder's curves of an earlier attempt are stale and removed; a resumed training
        appends, and TensorBoard hides what the killed attempt logged from `first_step` on (`purge_step`)."""
        folder = Path(self.accelerator.logging_dir)
        if self.accelerator.is_main_process:
            if first_step == 1:
                shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            if "wandb" in self.report_to:
                os.environ.setdefault("WANDB_MODE", "offline")
            if "mlflow" in self.report_to:
                os.environ.setdefault("MLFLOW_TRACKING_URI", (folder / "mlruns").resolve().as_uri())
        init_kwargs = {"wandb": {"name": self.run_name, "dir": str(folder)}, "mlflow": {"run_name": self.run_name},
                       "tensorboard": {"purge_step": first_step} if first_step > 1 else {}}
        self.accelerator.init_trackers(PROJECT, config=scalar_config(self.metadata), init_kwargs=init_kwargs)
        self.started = True


@contextlib.contextmanager
def tracked_run(accelerator: Any, report_to: Sequence[str], run_name: str, metadata: Mapping[str, Any]) -> Iterator[StepLogger | None]:
    """The loop's per-step logger for the trackers the Accelerator was built with (`log_with`, `project_dir`;
    None without trackers); the run is ended however the block ends."""
    if not report_to:
        yield None
        return
    active = {str(tracker) for tracker in accelerator.log_with}
    if active != set(report_to):  # accelerate drops a tracker it cannot import, without a word
        raise ValueError(f"{CONFIG_KEY}: accelerate could not start {', '.join(sorted(set(report_to) - active))}")
    try:
        yield _Run(accelerator, report_to, run_name, metadata)
    finally:
        accelerator.end_training()
