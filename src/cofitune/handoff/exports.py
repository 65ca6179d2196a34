"""The chosen region in the formats of other trainers: axolotl's `unfrozen_parameters`, a PEFT
`LoraConfig` restricted to the region, and a torchtune-style list of parameter names (torchtune
is no longer maintained; the list is kept while it costs nothing).

Everything is derived from the exact tensor names the region trains (as in the Hugging Face model),
so what these files select can be checked against what cofitune trained. What they cannot say is
the fine level: CoFiTune scales each head's or neuron's update by 1 - its importance; these
trainers train the region's tensors uniformly (axolotl can at most pin whole row ranges).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cofitune.models import regions

# Hugging Face Llama-family names -> torchtune's own module names (torchtune.models.convert_weights'
# HF mapping for Llama: q/k/v keep their names, o_proj is attn.output_proj, gate/down/up are w1/w2/w3,
# the two layer norms are sa_norm and mlp_norm, whose weight torchtune calls `scale`).
_TORCHTUNE_LLAMA = {
    "self_attn.q_proj.weight": "attn.q_proj.weight",
    "self_attn.k_proj.weight": "attn.k_proj.weight",
    "self_attn.v_proj.weight": "attn.v_proj.weight",
    "self_attn.o_proj.weight": "attn.output_proj.weight",
    "mlp.gate_proj.weight": "mlp.w1.weight",
    "mlp.down_proj.weight": "mlp.w2.weight",
    "mlp.up_proj.weight": "mlp.w3.weight",
    "input_layernorm.weight": "sa_norm.scale",
    "post_attention_layernorm.weight": "mlp_norm.scale",
}
_TORCHTUNE_LLAMA_TOP = {"model.embed_tokens.weight": "tok_embeddings.weight", "model.norm.weight": "norm.scale",
                        "lm_head.weight": "output.weight"}


@dataclass(frozen=True)
class RegionExport:
    candidate: str
    parameter_names: list[str]  # exactly what the region trains, in the model's order
    axolotl_unfrozen: list[str]
    peft_lora: dict[str, Any] | None  # LoraConfig keyword arguments; None where LoRA cannot target the region
    torchtune_names: list[str] | None  # None for families torchtune's Llama names do not cover
    notes: list[str] = field(default_factory=list)


def export_region(model: nn.Module, candidate: str, names: Sequence[str], softmask: bool) -> RegionExport:
    """The hand-offs of a region given as parameter names of `model` (a meta-device model is enough)."""
    order = [n for n, _ in model.named_parameters()]
    unknown = sorted(set(names) - set(order))
    if unknown:
        raise KeyError(f"{len(unknown)} region tensor(s) are not parameters of this model, e.g. {unknown[:3]}")
    selected = [n for n in order if n in set(names)]
    notes = []
    if softmask:
        notes.append("The fine level is not expressible here: CoFiTune scaled each head's or neuron's gradient by "
                     "1 - its importance; these configs train the region's tensors uniformly (the soft-mask acts like a "
                     "per-row learning rate; none of these trainers has one).")
    peft, peft_note = peft_lora_config(model, selected)
    notes += [peft_note] if peft_note else []
    tune = torchtune_names(model, selected)
    if tune is None:
        notes.append(f"No torchtune names: torchtune's Llama naming does not cover {regions.family_of(model).name} models.")
    return RegionExport(candidate, selected, axolotl_patterns(selected), peft, tune, notes)


def axolotl_patterns(names: Sequence[str]) -> list[str]:
    """axolotl `unfrozen_parameters`: anchored patterns, one per tensor kind, layers as an alternation.

    axolotl matches each pattern with `re.match` after turning every '.' not followed by '+' into a
    literal dot, so the patterns use plain dots and no '.' wildcard.
    """
    by_kind: dict[tuple[str, str], list[str]] = defaultdict(list)
    singles = []
    for name in names:
        match = re.fullmatch(r"(.*\.)(\d+)(\..+)", name)
        if match:
            by_kind[(match.group(1), match.group(3))].append(match.group(2))
        else:
            singles.append(f"^{name}$")
    layered = [f"^{head}({'|'.join(layers)}){tail}$" if len(layers) > 1 else f"^{head}{layers[0]}{tail}$"
               for (head, tail), layers in by_kind.items()]
    return singles + layered


def peft_lora_config(model: nn.Module, names: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """LoraConfig arguments adapting exactly the region's weight matrices, and a note on what LoRA leaves out.

    A region is a layer range x module set, so its matrices are the same modules in every chosen
    layer: `target_modules` (paths inside a layer) x `layers_to_transform`. Tensors that are not a
    decoder layer's weight matrix (biases, norms, embeddings) have no LoRA adapter.
    """
    family = regions.family_of(model)
    layers_attr = family.layers_path.rsplit(".", 1)[-1]
    matrices: dict[str, set[int]] = defaultdict(set)
    left_out, transposed = [], False
    for name in names:
        match = re.fullmatch(rf"{re.escape(family.layers_path)}\.(\d+)\.(.+)\.weight", name)
        module = model.get_submodule(name.removesuffix(".weight")) if match else None
        if match and _adaptable(module):
            matrices[match.group(2)].add(int(match.group(1)))
            transposed |= type(module).__name__ == "Conv1D"  # GPT-2 stores (in, out)
        else:
            left_out.append(name)
    if not matrices:
        return None, "No PEFT LoRA config: the region has no decoder-layer weight matrix for LoRA to adapt."
    layer_sets = {frozenset(v) for v in matrices.values()}
    if len(layer_sets) > 1:
        return None, "No PEFT LoRA config: the region's modules differ from layer to layer (not a layer range x module set)."
    layers = sorted(next(iter(layer_sets)))
    all_layers = len(layers) == len(regions.decoder_layers(model))
    config = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM",
              "target_modules": sorted(matrices), "layers_to_transform": None if all_layers else layers,
              "layers_pattern": None if all_layers else layers_attr, "fan_in_fan_out": transposed}
    note = "LoRA trains a low-rank update (r 16, alpha 32: adjust to taste) of the region's matrices, not the matrices themselves."
    if left_out:
        note += f" Not adapted (LoRA has no adapter for them): {len(left_out)} tensor(s), e.g. {', '.join(left_out[:3])}."
    return config, note


def _adaptable(module: nn.Module | None) -> bool:
    """Modules PEFT's LoRA wraps: linear layers and GPT-2's Conv1D."""
    return module is not None and (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D")


def torchtune_names(model: nn.Module, names: Sequence[str]) -> list[str] | None:
    """The names torchtune's Llama-family models give the same tensors; None for other families."""
    family = regions.family_of(model)
    if family.name != "llama":
        return None
    out = []
    for name in names:
        match = re.fullmatch(rf"{re.escape(family.layers_path)}\.(\d+)\.(.+)", name)
        mapped = (f"layers.{match.group(1)}.{_TORCHTUNE_LLAMA[match.group(2)]}"
                  if match and match.group(2) in _TORCHTUNE_LLAMA else _TORCHTUNE_LLAMA_TOP.get(name))
        if mapped is None:
            return None  # a tensor torchtune's Llama has no name for (e.g. a bias of another variant)
        out.append(mapped)
    return out
