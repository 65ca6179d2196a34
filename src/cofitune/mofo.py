"""MoFO, the momentum-filtered optimizer (Chen et al. 2024, arXiv 2407.20999): AdamW that, in each
step, changes only the `fraction` of each tensor's entries whose momentum is largest in magnitude.

Both moments are updated for every entry, as in AdamW; the filter decides which entries the step
(the Adam update and the decoupled weight decay) may change. Every other entry keeps its value
bit for bit, so the model drifts less from the base weights than under full AdamW. With
`fraction` 1.0 it is AdamW.

Two differences from the authors' code (read, not copied): their weight decay shrinks every entry
each step, ours only the chosen ones, so that a step touches exactly the chosen entries (their
fine-tuning scripts use weight decay 0, where the two agree); their biases and norm weights take
unfiltered steps, ours are filtered like every tensor.

The selection is per whole tensor. Under FSDP2 a parameter is a DTensor whose momentum every
process holds one block of; the block's own top entries are not the tensor's, so each process
gathers the tensor's momentum (a collective, like a checkpoint's), picks the top entries of the
whole and keeps the part of that choice that falls in its block.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from cofitune.sharding import distribute_like, full_tensor

# The fraction the authors' scripts use for LLM fine-tuning (--MoFO_fraction 0.15).
DEFAULT_FRACTION = 0.15


def entries_to_update(numel: int, fraction: float) -> int:
    """How many of a tensor's entries one step changes: ceil(fraction x numel), at least one."""
    return min(numel, max(1, math.ceil(fraction * numel)))


def momentum_filter(momentum: torch.Tensor, fraction: float) -> torch.Tensor:
    """Boolean mask of the entries with the largest |momentum|, exactly `entries_to_update` of the
    whole tensor (laid out like `momentum`, so a DTensor gets its own block of the choice)."""
    k = entries_to_update(momentum.numel(), fraction)  # a DTensor's numel is the whole tensor's
    if k == momentum.numel():  # everything: no gather needed
        return torch.ones_like(momentum, dtype=torch.bool)
    whole = full_tensor(momentum)
    chosen = torch.zeros(whole.numel(), dtype=torch.bool, device=whole.device)
    chosen[whole.detach().abs().flatten().topk(k, sorted=False).indices] = True
    return distribute_like(chosen.view(whole.shape), momentum, keep_dtype=True)


class MoFO(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias-corrected moments) with MoFO's momentum filter.

    State per parameter is AdamW's (`step`, `exp_avg`, `exp_avg_sq`), so checkpoints hold and
    restore it exactly as they do AdamW's.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fraction: float = DEFAULT_FRACTION,
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"MoFO's fraction must be in (0, 1], not {fraction}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "fraction": fraction})

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
        exp_avg, exp_avg_sq, grad = state["exp_avg"], state["exp_avg_sq"], param.grad
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # AdamW's arithmetic, in AdamW's order, computed out of place: the filter picks what lands
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        stepped = param * (1 - group["lr"] * group["weight_decay"])
        stepped.addcdiv_(exp_avg, denom, value=-group["lr"] / (1 - beta1**step))
        param.copy_(torch.where(momentum_filter(exp_avg, group["fraction"]), stepped, param))
