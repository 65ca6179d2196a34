"""What several stages share: loading a candidate's model, device and precision choices."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cofitune.infra import io
from cofitune.models.modeling import load_prepared


def apply_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Overwrite the named parameters of `model` with trained values (tied weights follow)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            if name not in params or params[name].shape != value.shape:
                raise ValueError(f"trained tensor {name} {tuple(value.shape)} does not fit this base model")
            params[name].copy_(value)


def load_candidate_model(model_dir: str | Path, trained_file: str | Path | None) -> tuple[nn.Module, Any]:
    """The prepared base model with a candidate's trained tensors written in, in eval mode."""
    model, tokenizer = load_prepared(model_dir)
    if trained_file:
        apply_tensors(model, io.load_tensors(trained_file))
    model.eval()
    return model, tokenizer


def resolve_precision(precision: str) -> str:
    """'auto': bf16 on a GPU that has it, otherwise full fp32 (exact, and what CPU tests compare)."""
    if precision != "auto":
        return {"fp32": "no"}.get(precision, precision)
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def build_accelerator(precision: str, log_with: Sequence[str] = (), project_dir: str | Path | None = None):
    """The job's Accelerator; `log_with` trackers (`training.report_to`) write under `project_dir`.
    Without trackers it is built exactly as before: no project folder, nothing written."""
    from accelerate import Accelerator

    tracking = {"log_with": list(log_with), "project_dir": str(project_dir)} if log_with else {}
    return Accelerator(mixed_precision=resolve_precision(precision), cpu=not torch.cuda.is_available(), **tracking)


def resolve_device(device: str) -> str:
    """'auto': cuda when available, else cpu."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def json_arg(text: str) -> Any:
    """argparse type of the launched stages' JSON options (config sections, passed verbatim)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err


def json_list_arg(text: str) -> list[Any]:
    """argparse type of a JSON list option (e.g. `--report-to '["tensorboard"]'`)."""
    value = json_arg(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"takes a JSON list, e.g. '[\"tensorboard\"]', not {text!r}")
    return value
