"""The one optimizer of the loop when a step must not land alike on every entry: AdamW whose step
(the Adam update and the decoupled weight decay) is scaled entry by entry.

Two per-entry scales of the step compose here, in one optimizer:
  step scales   the fine level's soft-mask in `update` mode: each unit's entries move by 1 - I
                times AdamW's step, a true per-unit learning rate. (Scaling the *gradient* instead,
                as the reference code does, is cancelled by Adam's normalisation: m / sqrt(v) is
                invariant to a constant per-entry factor; `masking` keeps that mode for reproduction.)
  MoFO's filter the step lands only on the `fraction` of each tensor's entries with the largest
                momentum (`cofitune.training.mofo`); the others keep their value bit for bit.
Both moments follow every entry's gradient, unscaled, exactly as in AdamW, so the state (`step`,
`exp_avg`, `exp_avg_sq`) is AdamW's and checkpoints hold and restore it as they do AdamW's.
With neither scale it is AdamW (`foreach=False`) bit for bit.

Under FSDP2 a parameter, its gradient and its moments are DTensors whose blocks every process
holds along the same placement: the arithmetic runs on the local blocks, and a step scale is cut
to the block of the parameter once, from the parameter's own placement. No buffer the size of a
parameter is kept beyond AdamW's moments; the scales are one factor per unit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from cofitune.models.sharding import local_block
from cofitune.training.mofo import momentum_filter


def _local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's block on this process (the same storage), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


class ScaledAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias-corrected moments) with optional per-entry step scales
    (`step_scales`: parameter -> factors broadcastable to its global shape) and MoFO's momentum
    filter (`fraction` < 1)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fraction: float = 1.0,
        step_scales: Mapping[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"MoFO's fraction must be in (0, 1], not {fraction}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "fraction": fraction})
        members = {id(p) for group in self.param_groups for p in group["params"]}
        scales = step_scales or {}
        strangers = [tuple(p.shape) for p in scales if id(p) not in members]
        if strangers:
            raise ValueError(f"step scales for {len(strangers)} tensor(s) the optimizer does not train, shapes {strangers[:3]}")
        # the block of each factor tensor that this process's part of its parameter covers, cut once
        self._scales = {id(p): self._block_of(s, p) for p, s in scales.items()}

    @staticmethod
    def _block_of(scale: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        from torch.distributed.tensor import DTensor

        block = local_block(scale, param) if isinstance(param, DTensor) else scale
        local = _local(param)
        return block.to(device=local.device, dtype=local.dtype)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[param]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        step = float(state["step"])
        exp_avg, exp_avg_sq = _local(state["exp_avg"]), _local(state["exp_avg_sq"])
        value, grad = _local(param), _local(param.grad)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # AdamW's arithmetic in AdamW's order (torch's single-tensor AdamW), so that unscaled is bitwise AdamW
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        step_size = group["lr"] / (1 - beta1**step)
        decay = group["lr"] * group["weight_decay"]
        scale = self._scales.get(id(param))
        chosen = None if group["fraction"] >= 1.0 else _local(momentum_filter(state["exp_avg"], group["fraction"]))
        # value - scale * (decay * value + step_size * m / denom); in place unless MoFO must choose
        target = value if chosen is None else value.clone()
        target.mul_(1 - decay if scale is None else 1 - decay * scale)
        target.addcdiv_(exp_avg if scale is None else exp_avg * scale, denom, value=-step_size)
        if chosen is not None:
            value.copy_(torch.where(chosen, target, value))
