"""The JSON records jobs hand to each other, as typed and versioned dataclasses.

Each record is written and read here and nowhere else:
  TrainRecord    results/train/<candidate>/train_metrics.json  (what a training did and cost)
  EvalRecord     results/eval/<split>/<candidate>/metrics.json (lm-eval metrics of one model on one item split)
  LevelDecision  results/search/level_<k>.json                 (one search level's contenders and choice)
A file written by another record version, or with missing or unknown fields, is refused with a
message that names it and says what to delete, instead of being read with guessed defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from cofitune.infra import io

R = TypeVar("R", bound="Record")


class RecordError(ValueError):
    pass


@dataclass(frozen=True)
class Record:
    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def write(self, path: str | Path) -> None:
        io.write_json(path, {"record": self.KIND, "version": self.VERSION, **asdict(self)})

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        data = io.read_json(path)
        stale = f"delete {path} and rerun the job that writes it"
        if not isinstance(data, dict) or data.get("record") != cls.KIND:
            raise RecordError(f"{path}: not a {cls.KIND} record (written by an older cofitune?); {stale}")
        if data.get("version") != cls.VERSION:
            raise RecordError(f"{path}: {cls.KIND} record version {data.get('version')}, this cofitune reads {cls.VERSION}; {stale}")
        fields = {f.name for f in dataclasses.fields(cls)}
        body = {k: v for k, v in data.items() if k not in ("record", "version")}
        if set(body) != fields:
            missing, unknown = sorted(fields - set(body)), sorted(set(body) - fields)
            raise RecordError(f"{path}: {cls.KIND} record with missing fields {missing} and unknown fields {unknown}; {stale}")
        return cls(**body)


@dataclass(frozen=True)
class TrainRecord(Record):
    KIND: ClassVar[str] = "train_metrics"
    VERSION: ClassVar[int] = 3

    candidate: str
    method: str
    layer_range: str  # '0.25-0.5', 'all', or '' for methods that are not regions
    module_set: str
    softmask: bool
    options: dict[str, Any]
    layer_indices: list[int]
    trainable_tensors: int
    trainable_params: int
    total_params: int
    steps: int
    resumed_from_step: int
    final_loss: float | None
    input_tokens: int
    target_tokens: int
    wall_seconds: float
    tokens_per_second: float
    precision: str
    processes: int
    sharding: str  # none or fsdp
    softmask_tensors: int
    softmask_parts: list[str]
    softmask_apply: str  # where the factors act: 'update' (the optimizer's step), 'gradient', or '' (no mask)
    seed: int
    learning_rate: float | None  # peak learning rate (None: not trained)
    history: list[dict[str, float]] = field(default_factory=list)
    mask_control: str = ""  # '' or a control of the fine level: 'uniform', 'shuffled'

    @classmethod
    def untrained(cls, describe: dict[str, Any], options: dict[str, Any], layer_indices: list[int], total_params: int, seed: int) -> TrainRecord:
        """The record of a model that no training made (the base model, Wise-FT)."""
        return cls(
            **describe, options=options, layer_indices=layer_indices, trainable_tensors=0, trainable_params=0,
            total_params=total_params, steps=0, resumed_from_step=0, final_loss=None, input_tokens=0, target_tokens=0,
            wall_seconds=0.0, tokens_per_second=0.0, precision="", processes=0, sharding="none", softmask_tensors=0, softmask_parts=[],
            softmask_apply="", seed=seed, learning_rate=None, history=[],
        )


@dataclass(frozen=True)
class EvalRecord(Record):
    KIND: ClassVar[str] = "eval_metrics"
    VERSION: ClassVar[int] = 4  # 4: each metrics row records its few-shot settings

    candidate: str
    split: str  # the items scored: 'select' (what the search decides on) or 'confirm' (what the run reports)
    metrics: list[dict[str, Any]]  # one row per (format, task): format, task, metric, value in [0, 1], n, num_fewshot,
    # fewshot_as_multiturn, system_instruction (what lm-eval applied)
    batch_size: int
    device: str
    wall_seconds: float
    total_params: int  # of the evaluated model (the base model's size for every candidate)
    kl_base: float | None  # mean KL(base || model) per token on the importance data (None: not measured)
    kl_tokens: int


@dataclass(frozen=True)
class LevelDecision(Record):
    KIND: ClassVar[str] = "search_level"
    VERSION: ClassVar[int] = 2

    level: int
    mode: str
    contenders: list[dict[str, Any]]  # node, layer_range, module_set, spe, ver, uni (+ p_best, diff, diff_lo, diff_hi, trainable_params)
    chosen_id: str
    reason: str = ""  # why this node: the leader, or a smaller one within the tie band
