"""Candidates: the models a run trains and evaluates (the base model, full SFT, regions)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from cofitune import regions

BASE_ID = "base"
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"


@dataclass(frozen=True)
class Candidate:
    """One model to evaluate. `layer_range=None` with module set 'all' is full SFT.

    `softmask` adds the fine level: gradient rows scaled by 1 - importance. Full SFT with the
    mask is the V-SoftMask baseline.
    """

    id: str
    method: str  # "base", "full_sft", "v_softmask", "region" or "region+softmask"
    layer_range: tuple[float, float] | None = None
    module_set: str = "all"
    softmask: bool = False

    @property
    def trains(self) -> bool:
        return self.method != "base"

    def trainable_names(self, model: nn.Module, module_sets: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        if not self.trains:
            return []
        names = regions.select_parameters(model, self.layer_range, self.module_set, dict(module_sets or {}))
        if not names:
            n = len(regions.decoder_layers(model))
            raise ValueError(f"candidate {self.id!r}: layer range {self.layer_range} selects no layer of a {n}-layer model")
        return names

    def layer_indices(self, n_layers: int) -> list[int]:
        if not self.trains:
            return []
        return regions.layer_indices(self.layer_range or (0.0, 1.0), n_layers)

    def describe(self) -> dict[str, Any]:
        return {
            "candidate": self.id,
            "method": self.method,
            "layer_range": "" if not self.trains else regions.format_layer_range(self.layer_range or (0.0, 1.0)),
            "module_set": self.module_set if self.trains else "",
            "softmask": self.softmask,
        }


def candidate_from_spec(spec: Mapping[str, Any]) -> Candidate:
    """`{layers: all|q2|[a, b]|'a-b', modules: ffn|mha|mha+ffn|all, softmask?: bool, id?: str}`."""
    modules = spec.get("modules", "all")
    layers = spec.get("layers", "all")
    softmask = bool(spec.get("softmask", False))
    if layers == "all" and modules == "all":
        layer_range = None
        method = default_id = "v_softmask" if softmask else "full_sft"
    else:
        layer_range = regions.parse_layer_range(layers)
        method = "region+softmask" if softmask else "region"
        default_id = f"{regions.format_layer_range(layer_range)}_{modules}" + ("_softmask" if softmask else "")
    candidate_id = spec.get("id") or default_id
    if not re.fullmatch(ID_PATTERN, candidate_id) or candidate_id == BASE_ID:
        raise ValueError(f"candidate id {candidate_id!r} must match {ID_PATTERN} and not be {BASE_ID!r}")
    return Candidate(candidate_id, method, layer_range, modules, softmask)


def candidates_from_config(specs: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The base model first, then the configured candidates; ids must be unique."""
    found = [Candidate(BASE_ID, "base", None, "")] + [candidate_from_spec(s) for s in specs]
    seen: set[str] = set()
    for c in found:
        if c.id in seen:
            raise ValueError(f"candidates: id {c.id!r} is used twice; give one of them an explicit 'id'")
        seen.add(c.id)
    return found


def specs_by_id(specs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trained candidates: id -> spec with its id filled in (what a training job is given)."""
    return {c.id: {**spec, "id": c.id} for c, spec in zip(candidates_from_config(specs)[1:], specs, strict=True)}
