"""The baselines CoFiTune is compared with, as pure functions of a model (no files, no CLI).

  HFT        Half Fine-Tuning (Hui et al. 2024): a seeded random half of each layer's attention
             and FFN matrices is trained, the other half frozen.
  last-n     LLaMA-Factory's freeze tuning: every parameter of the last n decoder layers.
  L2         L2 regularisation towards the base weights, applied as a gradient term.
  Wise-FT    weight-space interpolation between the base and the fine-tuned model.
  LoRA       low-rank adapters through peft, with merged weights keyed by the base model's names.

Selections are returned as parameter names (as in `model.named_parameters()`), so they plug into
`regions.freeze_all_but` exactly like a CoFiTune region.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from cofitune.models import regions

# HFT's two categories of matrices per decoder layer, by role (a family uses the roles it has).
HFT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "attention": ("q", "k", "v", "o"),
    "ffn": ("gate", "up", "down"),
}


# ------------------------------------------------------------------ HFT


def category_modules(model: nn.Module, roles: Sequence[str]) -> list[str]:
    """Distinct module paths (inside one layer) of `roles` this family has; fused q/k/v counts once."""
    family = regions.family_of(model)
    return list(dict.fromkeys(family.roles[r] for r in roles if r in family.roles))


def hft_layer_counts(n_matrices: int, n_layers: int, generator: torch.Generator) -> list[int]:
    """How many of a category's `n_matrices` each layer trains, so the model-wide total is half.

    Even counts train exactly half in every layer. Odd counts alternate floor/ceil across layers,
    starting with a seeded choice, so the total is exactly half when it is even (off by 1/2 otherwise).
    """
    half = n_matrices // 2
    if n_matrices % 2 == 0:
        return [half] * n_layers
    start = int(torch.randint(2, (1,), generator=generator))
    return [half + (start + i) % 2 for i in range(n_layers)]


def hft_trainable_names(model: nn.Module, seed: int) -> list[str]:
    """HFT: per layer and category, a seeded random half of the matrices is trained (biases follow).

    Norms, embeddings and the head stay frozen. The selection is a pure function of (architecture,
    depth, seed), so a run can be reproduced from its seed alone.
    """
    family = regions.family_of(model)
    n_layers = len(regions.decoder_layers(model))
    generator = torch.Generator().manual_seed(seed)
    plan = []
    for roles in HFT_CATEGORIES.values():
        modules = category_modules(model, roles)
        if modules:
            plan.append((modules, hft_layer_counts(len(modules), n_layers, generator)))
    prefixes = []
    for layer in range(n_layers):
        for modules, counts in plan:
            chosen = torch.randperm(len(modules), generator=generator)[: counts[layer]].tolist()
            prefixes += [f"{family.layers_path}.{layer}.{modules[i]}." for i in sorted(chosen)]
    wanted = tuple(prefixes)
    return [name for name, _ in model.named_parameters() if name.startswith(wanted)]


# ------------------------------------------------------------------ last-n layers


def last_n_layers_names(model: nn.Module, n: int) -> list[str]:
    """LLaMA-Factory freeze tuning: every parameter of the last `n` decoder layers, nothing else."""
    family = regions.family_of(model)
    n_layers = len(regions.decoder_layers(model))
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= n_layers:
        raise ValueError(f"last-n tuning needs an integer 1 <= n <= {n_layers} (the model's layers), got {n!r}")
    wanted = tuple(f"{family.layers_path}.{i}." for i in range(n_layers - n, n_layers))
    return [name for name, _ in model.named_parameters() if name.startswith(wanted)]


# ------------------------------------------------------------------ L2 towards the base


class L2Anchor:
    """L2 regularisation towards the base weights, lam * sum ||theta - theta0||^2, as a grad_transform.

    Construct it after freezing: it snapshots the parameters that require grad at that moment
    (a full copy of them). Calling it once per optimizer step (the training loop's `grad_transform`,
    which runs after gradient accumulation and the DDP all-reduce, before clipping) adds
    d/dtheta penalty = 2 * lam * (theta - theta0) to each gradient. Since the gradient of a sum is the
    sum of gradients, this is exactly the update of adding `penalty` to the step's loss, but it costs
    no autograd graph and no extra backward. The term is identical on every process, so adding it
    after the all-reduce equals adding it before. Snapshots follow the parameters to whatever device
    the model is moved to (e.g. by `accelerator.prepare`) on first use.
    """

    def __init__(self, model: nn.Module, lam: float) -> None:
        lam = float(lam)
        if not (math.isfinite(lam) and lam >= 0.0):
            raise ValueError(f"L2 strength lam must be a finite number >= 0, got {lam}")
        self.lam = lam
        self.anchors = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        if not self.anchors:
            raise ValueError("L2Anchor: the model has no trainable parameters; freeze the model first, then anchor")

    def _pairs(self, model: nn.Module) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, its base value on the parameter's device) for every anchored tensor."""
        params = dict(model.named_parameters())
        missing = [n for n in self.anchors if n not in params]
        if missing:
            raise KeyError(f"L2Anchor: the model has no parameters {missing[:5]}; pass the model it was built from")
        for name, anchor in self.anchors.items():
            param = params[name]
            if anchor.device != param.device:
                anchor = self.anchors[name] = anchor.to(param.device)
            yield param, anchor

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """lam * sum ||theta - theta0||^2 in float32 (differentiable, e.g. to log or check it)."""
        total: torch.Tensor | None = None
        for param, anchor in self._pairs(model):
            term = (param.float() - anchor.float()).pow(2).sum()
            total = term if total is None else total + term.to(total.device)
        assert total is not None  # __init__ guarantees at least one anchored tensor
        return self.lam * total

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        """Add 2 * lam * (theta - theta0) to every anchored parameter's .grad (creating it if None)."""
        if self.lam == 0.0:
            return  # exactly plain training: no zero gradients created for tensors that got none
        for param, anchor in self._pairs(model):
            grad = (param - anchor).mul_(2.0 * self.lam)
            if param.grad is None:
                param.grad = grad
            else:
                param.grad.add_(grad.to(param.grad.dtype))


# ------------------------------------------------------------------ Wise-FT


def wise_ft(base: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """Wise-FT: (1 - alpha) * base + alpha * finetuned for every key of `finetuned`.

    alpha 0 returns exact copies of `base`, alpha 1 exact copies of `finetuned` (bitwise), so the
    two ends of a sweep reproduce the base and the fine-tuned model. Low-precision tensors are
    interpolated in float32 and rounded once.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:  # NaN fails too
        raise ValueError(f"Wise-FT alpha must lie in [0, 1], got {alpha}")
    missing = [k for k in finetuned if k not in base]
    if missing:
        raise KeyError(f"Wise-FT: the base weights lack {len(missing)} fine-tuned tensor(s), e.g. {missing[:5]}")
    return {key: _interpolate(key, base[key], tensor, alpha) for key, tensor in finetuned.items()}


def _interpolate(key: str, base: torch.Tensor, finetuned: torch.Tensor, alpha: float) -> torch.Tensor:
    if base.shape != finetuned.shape or base.dtype != finetuned.dtype:
        raise ValueError(
            f"Wise-FT: {key} is {tuple(base.shape)} {base.dtype} in the base but "
            f"{tuple(finetuned.shape)} {finetuned.dtype} fine-tuned"
        )
    if alpha == 0.0:
        return base.detach().clone()
    if alpha == 1.0:
        return finetuned.detach().clone()
    if not finetuned.is_floating_point():
        if torch.equal(base.to(finetuned.device), finetuned):
            return finetuned.detach().clone()
        raise ValueError(f"Wise-FT: cannot interpolate non-floating tensor {key} ({finetuned.dtype}) that differs")
    mixed = base.detach().to(finetuned.device, torch.float32).mul(1.0 - alpha)
    return mixed.add_(finetuned.detach().float(), alpha=alpha).to(finetuned.dtype)


# ------------------------------------------------------------------ LoRA (peft)


def lora_targets(model: nn.Module, roles: Sequence[str]) -> list[str]:
    """The module-name suffixes peft's `target_modules` needs for `roles` in this family.

    Suffixes keep the parent ('self_attn.q_proj', 'attn.c_proj' vs 'mlp.c_proj'), because peft
    matches a module when its name ends with '.' + target; fused q/k/v appears once.
    """
    family = regions.family_of(model)
    if not roles:
        raise ValueError(f"LoRA needs at least one role; roles are {regions.ROLES}")
    unknown = sorted(set(roles) - set(regions.ROLES))
    if unknown:
        raise ValueError(f"unknown LoRA role(s) {unknown}; roles are {regions.ROLES}")
    absent = [r for r in roles if r not in family.roles]
    if absent:
        raise ValueError(f"{family.name} models have no {absent} projection(s); drop them from the LoRA roles")
    return list(dict.fromkeys(family.roles[r] for r in roles))


def wrap_lora(
    model: nn.Module,
    rank: int,
    alpha: float,
    roles: Sequence[str],
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Wrap `model` (in place, as peft does) with LoRA adapters on `roles`; only A/B are trainable.

    A is initialised from `seed` (the global RNG state is restored afterwards) and peft sets B to
    zero, so the wrapped model starts exactly equal to the base. GPT-2's Conv1D stores (in, out):
    `fan_in_fan_out` is set from the family so peft needs no correcting (and warns about none).
    """
    from peft import LoraConfig, get_peft_model

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1, got {rank!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"LoRA alpha must be > 0, got {alpha}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must lie in [0, 1), got {dropout}")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(model, roles),
        fan_in_fan_out=regions.family_of(model).transposed,
        bias="none",
        task_type="CAUSAL_LM",
    )
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def merged_lora_tensors(peft_model: nn.Module) -> dict[str, torch.Tensor]:
    """W + (alpha / rank) * B @ A for every LoRA-wrapped module, keyed by the base model's names.

    Uses peft's own `get_delta_weight`, which transposes for Conv1D (fan_in_fan_out), on fresh
    tensors: the peft model is not merged or otherwise changed. Adapters peft has already merged
    into a base weight are not added twice. Biases are untouched by LoRA (bias='none') and omitted.
    """
    from peft.tuners.lora import LoraLayer, ParamWrapper

    merged: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, module in peft_model.get_base_model().named_modules():
            if not isinstance(module, LoraLayer):
                continue
            if isinstance(module, ParamWrapper):
                raise NotImplementedError(f"{name}: LoRA on target_parameters is not supported")
            weight = module.get_base_layer().weight.detach().clone()
            for adapter in _pending_adapters(module):
                if adapter in module.lora_variant or module.lora_bias.get(adapter, False):
                    raise NotImplementedError(f"{name}: only plain LoRA (no DoRA or other variants, no lora_bias) is supported")
                weight += module.get_delta_weight(adapter).to(weight.dtype)
            merged[f"{name}.weight"] = weight
    return merged


def _pending_adapters(module: nn.Module) -> list[str]:
    """Active adapters of a LoRA layer that are not merged into its base weight yet (as peft merges)."""
    done = set(module.merged_adapters)
    return [a for a in module.active_adapters if a in module.lora_A and a not in done]
