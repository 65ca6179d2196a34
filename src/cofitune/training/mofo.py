"""MoFO, the momentum-filtered optimizer (Chen et al. 2024, arXiv 2407.20999): AdamW that, in each
step, changes only the `fraction` of each tensor's entries whose momentum is largest in magnitude.
This module owns the filter; `cofitune.training.optim.ScaledAdamW` applies it (with the soft-mask's step
scales, when both are asked for: they compose in one optimizer).

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

import torch

from cofitune.models.sharding import distribute_like, full_tensor

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
