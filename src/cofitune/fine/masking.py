"""Fine level, applied: soft-masking by importance during SFT.

Each masked parameter's *output units* (its rows; columns of GPT-2's Conv1D) get the factor 1 - I:
  attention          q, k, v rows by the importance of their head, repeated head_dim times; for
                     grouped-query attention a key/value head takes the max over the query heads
                     that share it; fused q/k/v matrices follow their family's layout;
  input_projection   up (and gate, when trained) rows by the FFN intermediate importance;
  output_projection  down rows by the FFN output importance.
Biases likewise. The forward pass is unchanged. Where the factor acts (`softmask.apply`):
  update    on the optimizer's step (`cofitune.training.optim.ScaledAdamW`): each unit's entries move by
            1 - I times AdamW's step, Adam update and decoupled decay alike: a per-unit learning
            rate, whatever the optimizer normalises. The default.
  gradient  on the gradient, once per optimizer step (after accumulation and the DDP all-reduce,
            before clipping), as the reference code does. Under AdamW a constant per-entry factor
            cancels (m / sqrt(v) is invariant to it), so this mode acts only through clipping, eps
            and units whose factor is 0; it is kept to reproduce the reference.
Because the factors are identical on every process, masking the averaged gradient equals
averaging masked gradients. Under FSDP2 a gradient (and a parameter) is a DTensor of which each
process holds a block: the block of factors is read from the tensor's own placement.

Controls (`control`), to tell "which units are slowed" from "how much": `uniform` gives every unit
of a layer and part that layer's mean importance (the same average rate, no selectivity);
`shuffled` permutes the importances within each layer and part (the same distribution, the wrong
units), with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cofitune.fine.importance import n_heads
from cofitune.models import regions

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


APPLY_MODES = ("update", "gradient")
CONTROLS = ("uniform", "shuffled")


def controlled(importance: Mapping[str, torch.Tensor], control: str | None, seed: int = 0) -> dict[str, torch.Tensor]:
    """The importance a control trains with: each layer's row (units of one part) made uniform at
    its mean, or permuted (seeded); None: the importance itself."""
    if control is None:
        return dict(importance)
    if control == "uniform":
        return {part: values.mean(dim=-1, keepdim=True).expand_as(values).clone() for part, values in importance.items()}
    if control == "shuffled":
        generator = torch.Generator().manual_seed(seed)
        return {part: torch.stack([row[torch.randperm(row.numel(), generator=generator)] for row in values])
                for part, values in sorted(importance.items())}
    raise ValueError(f"unknown soft-mask control {control!r}; choose from {CONTROLS}")


class SoftMask:
    """Per-unit factors of the trained tensors, applied in one of `APPLY_MODES`: `update` hands
    them to the optimizer (`step_scales`), `gradient` scales gradient rows in place when called
    (the loop's grad_transform)."""

    def __init__(self, model: nn.Module, scales: Mapping[str, torch.Tensor], apply: str = "update"):
        if apply not in APPLY_MODES:
            raise ValueError(f"softmask.apply must be one of {APPLY_MODES}, not {apply!r}")
        self.apply = apply
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

    def step_scales(self) -> dict[torch.Tensor, torch.Tensor]:
        """For the optimizer in `update` mode: parameter -> its factors, broadcastable to its (global)
        shape; empty in `gradient` mode."""
        return {param: scale for param, scale in self._targets} if self.apply == "update" else {}

    def grad_transforms(self) -> list[SoftMask]:
        """For the loop in `gradient` mode: [this mask] (it scales gradient rows when called); else []."""
        return [self] if self.apply == "gradient" else []

    def __str__(self) -> str:
        return f"on {len(self)} tensors, applied to the {self.apply}"

    def __call__(self, _model: nn.Module) -> None:
        from torch.distributed.tensor import DTensor

        from cofitune.models.sharding import local_block

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


def soft_mask_for(model: nn.Module, candidate, importance: Mapping[str, torch.Tensor] | None, trainable: Sequence[str],
                  parts: Sequence[str], apply: str, seed: int) -> SoftMask | None:
    """The soft-mask of a candidate (its `softmask`, `control` and `id`) over its trained tensors, or
    None when it has none; refused when the parts touch none of them."""
    if not candidate.softmask:
        return None
    scales = row_scales(model, controlled(importance, candidate.control, seed), trainable, parts)
    if not scales:
        raise ValueError(f"candidate {candidate.id!r}: the soft-mask parts {list(parts)} touch none of its trained tensors")
    return SoftMask(model, scales, apply)


@dataclass(frozen=True)
class SoftmaskSection:
    """The config's `softmask` section: which rows the factors 1 - I scale (`parts`: 'auto' or a
    tuple of parts) and where they act (`apply`: the optimizer's update or the gradient)."""

    parts: str | tuple[str, ...] = "auto"
    apply: str = "update"

    def __post_init__(self) -> None:
        if self.apply not in APPLY_MODES:
            raise ValueError(f"softmask.apply: {self.apply!r} is not one of {APPLY_MODES}")

    @classmethod
    def from_config(cls, softmask: Mapping[str, Any]) -> SoftmaskSection:
        parts = softmask.get("parts", "auto")
        return cls(parts=parts if isinstance(parts, str) else tuple(parts), apply=softmask.get("apply", "update"))

    def settings(self) -> dict[str, Any]:
        return {"parts": self.parts if isinstance(self.parts, str) else list(self.parts), "apply": self.apply}
