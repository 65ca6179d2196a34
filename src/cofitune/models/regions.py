"""Coarse level: a region (layer range x module set) resolved to the exact parameter tensors.

Module sets are named by *roles* (q, k, v, o, gate, up, down); one small table per architecture
family maps roles to the module names of that family, so the rest of the code never sees them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

ROLES = ("q", "k", "v", "o", "gate", "up", "down")

# The reference code's module sets (METHOD.md section 3): FFN without the gate projection,
# attention without the output projection. Configurable through `module_sets`.
DEFAULT_MODULE_SETS: dict[str, tuple[str, ...]] = {
    "ffn": ("up", "down"),
    "mha": ("q", "k", "v"),
    "mha+ffn": ("q", "k", "v", "up", "down"),
}

# Named layer ranges of the search (fractions of the depth).
NAMED_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1.0),
    "h1": (0.0, 0.5),
    "h2": (0.25, 0.75),
    "h3": (0.5, 1.0),
    "q1": (0.0, 0.25),
    "q2": (0.25, 0.5),
    "q3": (0.5, 0.75),
    "q4": (0.75, 1.0),
}


@dataclass(frozen=True)
class Family:
    """Where a family keeps its decoder layers and what each role's module is called."""

    name: str
    layers_path: str  # attribute path from the CausalLM to the ModuleList of layers
    roles: dict[str, str]  # role -> module path inside one layer
    fused_qkv: bool = False  # q, k and v live in one matrix (GPT-2, GPT-NeoX)
    # How the output units of the fused q/k/v matrix are laid out: "blocks" = [q | k | v] (GPT-2),
    # "per_head" = for each head [q_h | k_h | v_h] (GPT-NeoX). Unused when q, k, v are separate.
    qkv_layout: str = "separate"
    # Output units are the *columns* of the weight (GPT-2's Conv1D stores (in, out)).
    transposed: bool = False


_LLAMA = Family(
    name="llama",
    layers_path="model.layers",
    roles={
        "q": "self_attn.q_proj",
        "k": "self_attn.k_proj",
        "v": "self_attn.v_proj",
        "o": "self_attn.o_proj",
        "gate": "mlp.gate_proj",
        "up": "mlp.up_proj",
        "down": "mlp.down_proj",
    },
)
_GPT2 = Family(
    name="gpt2",
    layers_path="transformer.h",
    roles={"q": "attn.c_attn", "k": "attn.c_attn", "v": "attn.c_attn", "o": "attn.c_proj", "up": "mlp.c_fc", "down": "mlp.c_proj"},
    fused_qkv=True,
    qkv_layout="blocks",
    transposed=True,
)
_NEOX = Family(
    name="gpt_neox",
    layers_path="gpt_neox.layers",
    roles={
        "q": "attention.query_key_value",
        "k": "attention.query_key_value",
        "v": "attention.query_key_value",
        "o": "attention.dense",
        "up": "mlp.dense_h_to_4h",
        "down": "mlp.dense_4h_to_h",
    },
    fused_qkv=True,
    qkv_layout="per_head",
)

FAMILIES: dict[str, Family] = {
    "llama": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "mistral": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _LLAMA,
    "gpt2": _GPT2,
    "gpt_neox": _NEOX,
}


class UnsupportedArchitecture(ValueError):
    pass


def family_of(model: nn.Module) -> Family:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedArchitecture(
            f"architecture {model_type!r} is not supported; supported model_type values: "
            f"{', '.join(sorted(FAMILIES))}. Add a row to cofitune.models.regions.FAMILIES to support it."
        )
    return FAMILIES[model_type]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.get_submodule(family_of(model).layers_path)


def role_module(model: nn.Module, layer: int, role: str) -> nn.Module:
    family = family_of(model)
    return decoder_layers(model)[layer].get_submodule(family.roles[role])


def locate_parameter(model: nn.Module, name: str) -> tuple[int, tuple[str, ...], str] | None:
    """'model.layers.3.mlp.up_proj.weight' -> (3, ('up',), 'weight'); None outside the decoder layers."""
    family = family_of(model)
    match = re.fullmatch(rf"{re.escape(family.layers_path)}\.(\d+)\.(.+)\.(weight|bias)", name)
    if not match:
        return None
    roles = tuple(r for r, path in family.roles.items() if path == match.group(2))
    return int(match.group(1)), roles, match.group(3)


def layer_indices(layer_range: tuple[float, float], n_layers: int) -> list[int]:
    """Layers of [a, b): {i : floor(a*N) <= i < floor(b*N)}, as in the reference code."""
    start, stop = layer_range
    if not 0.0 <= start < stop <= 1.0:
        raise ValueError(f"layer range must satisfy 0 <= a < b <= 1, got [{start}, {stop})")
    return list(range(math.floor(start * n_layers), math.floor(stop * n_layers)))


def parse_layer_range(spec: str | Sequence[float]) -> tuple[float, float]:
    """'all', a named range ('q2'), 'a-b' or a two-element sequence -> (a, b)."""
    if isinstance(spec, str):
        if spec in NAMED_RANGES:
            return NAMED_RANGES[spec]
        match = re.fullmatch(r"([0-9.]+)-([0-9.]+)", spec)
        if not match:
            raise ValueError(f"layer range {spec!r}: expected 'all', one of {sorted(NAMED_RANGES)}, or 'a-b'")
        spec = (float(match.group(1)), float(match.group(2)))
    start, stop = (float(x) for x in spec)
    layer_indices((start, stop), 1)  # validates the bounds
    return start, stop


def format_layer_range(layer_range: tuple[float, float]) -> str:
    if tuple(layer_range) == (0.0, 1.0):
        return "all"
    return f"{layer_range[0]:g}-{layer_range[1]:g}"


def resolve_roles(module_set: str, module_sets: dict[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """A module-set name ('ffn', 'mha', 'mha+ffn', 'all', or a user-defined one) -> roles.

    'all' means every parameter of the selected layers (norms and the output projection too).
    """
    if module_set == "all":
        return ("all",)
    table = {**DEFAULT_MODULE_SETS, **{k: tuple(v) for k, v in (module_sets or {}).items()}}
    if module_set not in table:
        raise ValueError(f"unknown module set {module_set!r}; known: all, {', '.join(sorted(table))}")
    roles = tuple(table[module_set])
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"module set {module_set!r} names unknown roles {unknown}; roles are {ROLES}")
    return roles


def select_parameters(
    model: nn.Module,
    layer_range: tuple[float, float] | None,
    module_set: str,
    module_sets: dict[str, Sequence[str]] | None = None,
) -> list[str]:
    """Names (as in `model.named_parameters()`) of the tensors a region trains.

    `layer_range=None` with module set 'all' selects every parameter (full SFT), embeddings,
    final norm and head included.
    """
    names = [name for name, _ in model.named_parameters()]
    if layer_range is None:
        if module_set != "all":
            raise ValueError("a region without a layer range must use module set 'all' (full SFT)")
        return names
    family = family_of(model)
    layers = decoder_layers(model)
    roles = resolve_roles(module_set, module_sets)
    missing = [r for r in roles if r != "all" and r not in family.roles]
    if missing:
        raise ValueError(f"{family.name} models have no {missing} projection(s); drop them from module set {module_set!r}")
    prefixes = [f"{family.layers_path}.{i}." for i in layer_indices(layer_range, len(layers))]
    if roles == ("all",):
        wanted = tuple(prefixes)
    else:
        paths = sorted({family.roles[r] for r in roles})
        wanted = tuple(f"{p}{m}." for p in prefixes for m in paths)
    return [name for name in names if name.startswith(wanted)]


def freeze_all_but(model: nn.Module, trainable: Iterable[str]) -> None:
    """requires_grad=True exactly for `trainable`; frozen tensors then get no gradient and no optimizer state."""
    keep = set(trainable)
    unknown = keep - {n for n, _ in model.named_parameters()}
    if unknown:
        raise KeyError(f"no such parameters: {sorted(unknown)[:5]}")
    for name, param in model.named_parameters():
        param.requires_grad_(name in keep)


def count_parameters(model: nn.Module, names: Iterable[str] | None = None) -> int:
    """Parameters counted once even when tied (named_parameters deduplicates by identity)."""
    selected = None if names is None else set(names)
    return sum(p.numel() for n, p in model.named_parameters() if selected is None or n in selected)
