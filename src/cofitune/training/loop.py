"""The one explicit training loop (selective SFT), in the style of nanoGPT / torchtune.

Launcher-agnostic: it takes an `accelerate.Accelerator` that the entry point built, so the same
loop runs in one CPU process, on one GPU, under DDP, or on a model the caller sharded with FSDP2
(`cofitune.models.sharding`; then gradients are reduce-scattered, clipping uses the norm over every
shard, and checkpoints hold the gathered tensors). Per optimizer step it:
  1. runs the step's micro-batches (gradient accumulation, no DDP sync until the last one; rows
     grouped by length where that saves padding), with the loss summed over target tokens and divided by the step's *global* target-token
     count, so k micro-batches give exactly the update of one batch k times as large;
  2. calls `grad_transform` once (gradient terms such as L2, or the soft-mask in its reference
     `gradient` mode), then clips and steps; per-unit `step_scales` (the soft-mask in `update`
     mode) act inside the optimizer's step (`cofitune.training.optim`).
The data order is a pure function of (seed, step), and the checkpoint holds the trainable
tensors, AdamW moments and RNG state as safetensors, so a killed run resumes to the same weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from cofitune.data.sft import IGNORE_INDEX, collate
from cofitune.infra import io
from cofitune.models.sharding import distribute_like, full_tensor, is_sharded
from cofitune.training.loss import token_loss_sum

log = logging.getLogger(__name__)

GradTransform = Callable[[nn.Module], None]
StepLogger = Callable[[dict[str, float], float], None]  # (the step's record, its seconds): live curves


def chained(transforms: Sequence[GradTransform]) -> GradTransform | None:
    """One gradient transform that applies `transforms` in order (None when there are none)."""
    return (lambda model: [transform(model) for transform in transforms]) if transforms else None


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 4e-5
    epochs: int = 3
    max_steps: int | None = None  # overrides epochs when set
    micro_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.1
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    seed: int = 1234
    update_fraction: float | None = None  # MoFO's share of each tensor one step changes; None: AdamW
    save_every_steps: int = 50
    log_every_steps: int = 10
    # A step's rows are sorted by length and split into more micro-batches where a split saves at
    # least this many padded tokens (None: micro-batches of micro_batch_size rows in data order).
    length_split_tokens: int | None = 256

    @classmethod
    def from_config(cls, cfg: dict[str, Any], seed: int) -> TrainSettings:
        known = {f for f in cls.__dataclass_fields__ if f not in ("seed", "update_fraction")}  # those come from the run
        values = {k: v for k, v in cfg.items() if k in known}
        if "adam_betas" in values:
            values["adam_betas"] = tuple(values["adam_betas"])
        return cls(seed=seed, **values)

    def fingerprint(self, extra: dict[str, Any] | None = None) -> str:
        blob = json.dumps({**asdict(self), **(extra or {})}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    wall_seconds: float = 0.0
    input_tokens: int = 0
    target_tokens: int = 0
    resumed_from_step: int = 0

    @property
    def final_loss(self) -> float:
        return self.history[-1]["loss"] if self.history else float("nan")


class NonFiniteLossError(FloatingPointError):
    pass


# ------------------------------------------------------------------ data order and batching


def steps_per_epoch(n_examples: int, global_batch: int) -> int:
    if n_examples < global_batch:
        raise ValueError(
            f"{n_examples} training examples are fewer than one global batch "
            f"(micro_batch_size x gradient_accumulation_steps x processes = {global_batch})"
        )
    return n_examples // global_batch  # drop the last partial batch: every step has the same size


def total_steps(n_examples: int, settings: TrainSettings, world_size: int) -> int:
    if settings.max_steps is not None:
        return settings.max_steps
    return settings.epochs * steps_per_epoch(n_examples, global_batch_size(settings, world_size))


def global_batch_size(settings: TrainSettings, world_size: int) -> int:
    return settings.micro_batch_size * settings.gradient_accumulation_steps * world_size


def step_example_indices(step: int, n_examples: int, global_batch: int, seed: int) -> list[int]:
    """The examples of optimizer step `step`: a pure function, so resuming needs no sampler state."""
    per_epoch = steps_per_epoch(n_examples, global_batch)
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n_examples, generator=generator)
    return order[position * global_batch : (position + 1) * global_batch].tolist()


def micro_batches(lengths: Sequence[int], max_rows: int, split_tokens: int | None) -> list[list[int]]:
    """The step's rows (indices into `lengths`) as micro-batches of at most `max_rows` rows.

    Padding to the longest row of a micro-batch is wasted compute: mixed 80- and 200-token rows waste
    a third of it. Rows sorted by length are cut where the padded tokens saved pay for the extra
    micro-batch (`split_tokens` each): an exact minimum by dynamic programming. The update is the
    same whatever the cut, because the loss is summed over targets and divided by the step's total.
    """
    if split_tokens is None:
        return [list(range(i, min(i + max_rows, len(lengths)))) for i in range(0, len(lengths), max_rows)]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = [0.0] + [math.inf] * len(order)  # best[j]: cheapest cut of the j shortest rows
    cut_at = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(max(0, j - max_rows), j):  # the last micro-batch holds rows i .. j-1
            cost = best[i] + (j - i) * lengths[order[j - 1]] + split_tokens
            if cost < best[j]:
                best[j], cut_at[j] = cost, i
    chunks, j = [], len(order)
    while j:
        chunks.append(order[cut_at[j] : j])
        j = cut_at[j]
    return chunks[::-1]


def count_targets(rows: Sequence[dict[str, list[int]]]) -> int:
    return sum(sum(label != IGNORE_INDEX for label in r["labels"][1:]) for r in rows)


# ------------------------------------------------------------------ optimisation pieces


def build_optimizer(
    model: nn.Module, settings: TrainSettings, step_scales: Mapping[torch.Tensor, torch.Tensor] | None = None
) -> torch.optim.Optimizer:
    """AdamW over trainable tensors only; no weight decay on biases and norm weights (1-D).
    `cofitune.training.optim.ScaledAdamW` instead when a step must not land alike on every entry: MoFO's
    `update_fraction`, or per-unit `step_scales` (the soft-mask in update mode), or both."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the region selects no trainable parameters")
    groups = [
        {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": settings.weight_decay},
        {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if settings.update_fraction is not None or step_scales:
        from cofitune.training.optim import ScaledAdamW

        return ScaledAdamW(groups, lr=settings.learning_rate, betas=settings.adam_betas, eps=settings.adam_eps,
                           fraction=settings.update_fraction or 1.0, step_scales=step_scales)
    return torch.optim.AdamW(groups, lr=settings.learning_rate, betas=settings.adam_betas, eps=settings.adam_eps,
                             fused=fused_adamw_applies([p for _, p in params]))


def fused_adamw_applies(params: Sequence[torch.Tensor]) -> bool:
    """torch's fused AdamW (one kernel over all tensors: a quarter of the per-tensor loop's time on
    CPU) takes plain CPU or CUDA tensors of one floating type; sharded (DTensor) ones keep the loop."""
    from torch.distributed.tensor import DTensor

    kinds = {(p.device.type, p.dtype) for p in params}
    supported = {("cpu", torch.float32), ("cpu", torch.bfloat16), ("cuda", torch.float32), ("cuda", torch.bfloat16), ("cuda", torch.float16)}
    return len(kinds) == 1 and kinds <= supported and not any(isinstance(p, DTensor) for p in params)


def learning_rate_at(step: int, n_steps: int, settings: TrainSettings) -> float:
    """Linear warmup over warmup_ratio of the steps, then cosine decay to zero."""
    warmup = math.ceil(settings.warmup_ratio * n_steps)
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, n_steps - warmup)
    return settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


# ------------------------------------------------------------------ checkpoints


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole trainable tensors (gathered from every process under sharding: call it on all)."""
    return {n: full_tensor(p.detach()) for n, p in model.named_parameters() if p.requires_grad}


def checkpoint_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Trainable tensors, AdamW moments and RNG state, whole (a collective under sharding)."""
    tensors = {f"param/{n}": t for n, t in trainable_state(model).items()}
    for name, param in model.named_parameters():
        for key, value in optimizer.state.get(param, {}).items():
            tensors[f"optim/{name}/{key}"] = full_tensor(value) if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    return tensors


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """The tensors as safetensors and the progress as JSON, atomically."""
    with io.atomic_dir(path) as tmp:
        io.save_tensors(tmp / "state.safetensors", tensors)
        io.write_json(tmp / "state.json", meta)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore a checkpoint; everything is read and checked before anything is written into the model."""
    tensors = io.load_tensors(path / "state.safetensors")
    meta = io.read_json(path / "state.json")
    params = dict(model.named_parameters())
    saved = {key.partition("/")[2] for key in tensors if key.startswith("param/")}
    if saved != {n for n, p in params.items() if p.requires_grad} or "rng/cpu" not in tensors:
        raise io.DataError(path, "holds other tensors than this run trains")
    with torch.no_grad():
        for key, value in tensors.items():
            kind, _, rest = key.partition("/")
            if kind == "param":
                param = params[rest]
                param.copy_(distribute_like(value, param))
            elif kind == "optim":
                name, _, slot = rest.rpartition("/")
                param = params[name]
                # moments are laid out like their parameter; AdamW's step count is a plain scalar
                state = distribute_like(value, param) if value.shape == param.shape else value.clone()
                optimizer.state[param][slot] = state
    torch.set_rng_state(tensors["rng/cpu"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return meta


# ------------------------------------------------------------------ the loop


def train(
    model: nn.Module,
    rows: Sequence[dict[str, list[int]]],
    settings: TrainSettings,
    accelerator: Accelerator,
    pad_id: int,
    checkpoint_dir: Path | None = None,
    fingerprint: str = "",
    grad_transform: GradTransform | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    step_scales: Mapping[torch.Tensor, torch.Tensor] | None = None,
    log_step: StepLogger | None = None,
) -> TrainResult:
    """Train the parameters of `model` that require grad; the others are never touched.
    `step_scales`: per-entry factors of the optimizer's step for some parameters (the soft-mask).
    `log_step`: gets each step's record and its seconds, checkpoint saving excluded (`cofitune.training.tracking`)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = global_batch_size(settings, world)
    n_steps = total_steps(len(rows), settings, world)
    torch.manual_seed(settings.seed)
    model.train()
    optimizer = build_optimizer(model, settings, step_scales)
    result = TrainResult(steps=n_steps)
    start = _maybe_resume(checkpoint_dir, fingerprint, model, optimizer, result)
    sharded = is_sharded(model)  # FSDP2, applied by the caller: no DDP wrapper, gradients reduce-scattered
    ddp_model, optimizer = (model, optimizer) if sharded else accelerator.prepare(model, optimizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    clock = time.perf_counter()
    wall_before = result.wall_seconds
    for step in range(start, n_steps):
        step_clock = time.perf_counter()
        indices = step_example_indices(step, len(rows), global_batch, settings.seed)
        share = len(indices) // world
        local = [rows[i] for i in indices[rank * share : (rank + 1) * share]]
        global_targets = _global_sum(accelerator, count_targets(local))
        loss_sum = _accumulate(ddp_model, accelerator, local, settings, pad_id, world / global_targets, step, sharded)
        if grad_transform is not None:
            grad_transform(model)
        grad_norm = _clip(accelerator, trainable, settings.max_grad_norm, sharded)
        if not torch.isfinite(grad_norm):  # stop before AdamW writes it into the weights
            raise NonFiniteLossError(
                f"gradient norm is {float(grad_norm)} at optimizer step {step + 1} (loss was finite); the weights "
                "were not updated: lower the learning rate or use fp32 (training.precision)"
            )
        lr = learning_rate_at(step, n_steps, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record = {
            "step": step + 1,
            "loss": _global_sum(accelerator, loss_sum) / global_targets,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "target_tokens": global_targets,
            "input_tokens": _global_sum(accelerator, sum(len(r["input_ids"]) for r in local)),
        }
        result.history.append(record)
        result.wall_seconds = wall_before + time.perf_counter() - clock
        _log_progress(record, n_steps, result, settings)
        if log_step is not None:
            log_step(record, time.perf_counter() - step_clock)
        if checkpoint_dir is not None and (step + 1) % settings.save_every_steps == 0 and step + 1 < n_steps:
            _save(checkpoint_dir, model, optimizer, accelerator, fingerprint, result)
        if on_step is not None:
            on_step(step + 1, record)
    result.input_tokens = int(sum(r["input_tokens"] for r in result.history))
    result.target_tokens = int(sum(r["target_tokens"] for r in result.history))
    model.eval()
    return result


def _accumulate(
    model: nn.Module,
    accelerator: Accelerator,
    local: Sequence[dict[str, list[int]]],
    settings: TrainSettings,
    pad_id: int,
    scale: float,
    step: int,
    sharded: bool = False,
) -> float:
    """Forward/backward over the micro-batches of one step; gradients sync only on the last."""
    lengths = [len(row["input_ids"]) for row in local]
    chunks = [[local[i] for i in chunk] for chunk in micro_batches(lengths, settings.micro_batch_size, settings.length_split_tokens)]
    total = 0.0
    for i, chunk in enumerate(chunks):
        batch = {k: v.to(accelerator.device) for k, v in collate(chunk, pad_id).items()}
        sync = i == len(chunks) - 1
        if sharded:
            model.set_requires_gradient_sync(sync)  # FSDP2: reduce-scatter once, after the last micro-batch
        with contextlib.nullcontext() if sync or sharded else accelerator.no_sync(model):
            loss_sum = token_loss_sum(model, batch)
            if not torch.isfinite(loss_sum):
                raise NonFiniteLossError(
                    f"loss is {loss_sum.item()} at optimizer step {step + 1}, micro-batch {i + 1}: "
                    "lower the learning rate, check the data, or use bf16 instead of fp16"
                )
            if sharded:
                (loss_sum * scale).backward()
            else:
                accelerator.backward(loss_sum * scale)
        total += loss_sum.item()
    return total


def _clip(accelerator: Accelerator, params: list[torch.Tensor], max_norm: float, sharded: bool) -> torch.Tensor:
    """Clip by the global gradient norm (over every process's shards when sharded); returns the norm."""
    if not sharded:
        return accelerator.clip_grad_norm_(params, max_norm)
    return full_tensor(torch.nn.utils.clip_grad_norm_(params, max_norm))


def _global_sum(accelerator: Accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return float(value)
    tensor = torch.tensor(float(value), dtype=torch.float64, device=accelerator.device)
    return float(accelerator.reduce(tensor, reduction="sum"))


def _maybe_resume(
    checkpoint_dir: Path | None, fingerprint: str, model: nn.Module, optimizer: torch.optim.Optimizer, result: TrainResult
) -> int:
    if checkpoint_dir is None or not (checkpoint_dir / "state.json").is_file():
        return 0
    try:
        if io.read_json(checkpoint_dir / "state.json").get("fingerprint") != fingerprint:
            log.warning("ignoring checkpoint %s: it was made with other settings", checkpoint_dir)
            return 0
        meta = load_checkpoint(checkpoint_dir, model, optimizer)
    except io.DataError as err:  # e.g. truncated by a full disk or a copy: training from the start is always right
        log.warning("ignoring unreadable checkpoint %s (%s); training from step 0", checkpoint_dir, err)
        return 0
    result.history = meta["history"]
    result.wall_seconds = meta["wall_seconds"]
    result.resumed_from_step = meta["step"]
    log.info("resumed from checkpoint at step %d", meta["step"])
    return meta["step"]


def _save(checkpoint_dir: Path, model: nn.Module, optimizer, accelerator: Accelerator, fingerprint: str, result: TrainResult) -> None:
    tensors = checkpoint_tensors(model, optimizer)  # every process: gathering shards is a collective
    if accelerator.is_main_process:
        meta = {"step": len(result.history), "fingerprint": fingerprint, "history": result.history, "wall_seconds": result.wall_seconds}
        save_checkpoint(checkpoint_dir, tensors, meta)
    accelerator.wait_for_everyone()


def _log_progress(record: dict[str, float], n_steps: int, result: TrainResult, settings: TrainSettings) -> None:
    step = int(record["step"])
    if step % settings.log_every_steps and step != n_steps:
        return
    done = step - result.resumed_from_step
    per_step = result.wall_seconds / max(1, len(result.history))
    tokens = sum(r["input_tokens"] for r in result.history[-done:]) if done else 0
    log.info(
        "step %d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s  eta %.0fs",
        step, n_steps, record["loss"], record["lr"], record["grad_norm"],
        tokens / max(result.wall_seconds, 1e-9), per_step * (n_steps - step),
    )
