"""Fine level, applied: gradient soft-masking by importance during SFT.

Once per optimizer step (after every accumulation micro-step, after the DDP all-reduce, before
clipping) each masked parameter's gradient rows - its *output units* - are multiplied by 1 - I:
  attention          q, k, v rows by the importance of their head, repeated head_dim times; for
                     grouped-query attention a key/value head takes the max over the query heads
                     that share it; fused q/k/v matrices follow their family's layout;
  input_projection   up (and gate, when trained) rows by the FFN intermediate importance;
  output_projection  down rows by the FFN output importance.
Biases likewise. The forward pass is unchanged. Because the mask is linear and identical on every
process, masking the averaged gradient equals averaging masked gradients. Under FSDP2 a gradient
is a DTensor of which each process holds a block (after the reduce-scatter): the process scales
the block it holds with the matching block of factors, read from the gradient's own placement
(rows for a dim-0 shard, every row's slice of columns for a dim-1 shard).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from cofitune import regions
from cofitune.importance import n_heads

PARTS = ("attention", "input_projection", "output_projection")
DEFAULT_PARTS = ("input_projection", "output_projection")  # the reference's two FFN parts


def resolve_parts(parts: str | Iterable[str], model: nn.Module, names: Iterable[str]) -> tuple[str, ...]:
    """'auto': the reference's FFN parts when the region trains FFN tensors, else attention (so a
    soft-masked `mha` region is masked by head importance instead of not at all)."""
    if parts != "auto":
        return tuple(parts)
    roles = {r for n in names if (located := regions.locate_parameter(model, n)) for r in located[1]}
    return DEFAULT_PARTS if roles & {"up", "gate", "down"} else ("attention",)


def output_units(model: nn.Module, param: torch.Tensor) -> int:
    return param.shape[-1] if param.ndim == 2 and regions.family_of(model).transposed else param.shape[0]


def head_row_scale(model: nn.Module, roles: tuple[str, ...], head_importance: torch.Tensor, out: int) -> torch.Tensor:
    """1 - I for each of the `out` output units of a q, k, v (or fused qkv) matrix of one layer."""
    family = regions.family_of(model)
    heads = n_heads(model)
    keep = 1.0 - head_importance
    if family.qkv_layout == "blocks":  # [q | k | v], each heads x head_dim
        return keep.repeat_interleave(out // (3 * heads)).repeat(3)
    if family.qkv_layout == "per_head":  # per head [q_h | k_h | v_h]
        return keep.repeat_interleave(out // heads)
    (role,) = roles
    if role == "q":
        return keep.repeat_interleave(out // heads)
    kv_heads = int(getattr(model.config, "num_key_value_heads", None) or heads)
    shared = head_importance.view(kv_heads, heads // kv_heads).amax(dim=1)  # query heads h use kv head h // (H / KV)
    return (1.0 - shared).repeat_interleave(out // kv_heads)


def row_scales(
    model: nn.Module, importance: Mapping[str, torch.Tensor], names: Iterable[str], parts: Iterable[str] = DEFAULT_PARTS
) -> dict[str, torch.Tensor]:
    """Per masked parameter, the factor of each output unit. Parameters outside `parts` are absent."""
    parts = set(parts)
    unknown = parts - set(PARTS)
    if unknown:
        raise ValueError(f"unknown soft-mask parts {sorted(unknown)}; choose from {PARTS}")
    scales = {}
    params = dict(model.named_parameters())
    for name in names:
        located = regions.locate_parameter(model, name)
        if located is None:
            continue
        layer, roles, _ = located
        if {"up", "gate"} & set(roles) and "input_projection" in parts:
            scales[name] = 1.0 - importance["intermediate"][layer]
        elif "down" in roles and "output_projection" in parts:
            scales[name] = 1.0 - importance["output"][layer]
        elif {"q", "k", "v"} & set(roles) and "attention" in parts:
            scales[name] = head_row_scale(model, roles, importance["head"][layer], output_units(model, params[name]))
    return scales


class SoftMask:
    """The grad_transform of the training loop: scales gradient rows in place."""

    def __init__(self, model: nn.Module, scales: Mapping[str, torch.Tensor]):
        transposed = regions.family_of(model).transposed
        params = dict(model.named_parameters())
        self._targets = []
        for name, scale in scales.items():
            param = params[name]
            if param.ndim == 1:
                shape = (-1,)
            elif transposed:
                shape = (1, -1)  # Conv1D: output units are columns
            else:
                shape = (-1, 1)
            scale = scale.to(device=param.device, dtype=param.dtype).reshape(shape)
            expected = output_units(model, param)
            if scale.numel() != expected:
                raise ValueError(f"soft mask for {name}: {scale.numel()} factors for {expected} output units")
            self._targets.append((param, scale))

    def __call__(self, _model: nn.Module) -> None:
        from torch.distributed.tensor import DTensor

        from cofitune.sharding import local_block

        for param, scale in self._targets:
            grad = param.grad
            if grad is None:
                continue
            if isinstance(grad, DTensor):
                local = grad.to_local()
                local.mul_(local_block(scale, grad).to(local.device, local.dtype))
            else:
                grad.mul_(scale)

    def __len__(self) -> int:
        return len(self._targets)
