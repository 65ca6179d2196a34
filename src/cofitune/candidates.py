"""Candidates: every model a run evaluates, the base model included, and how each is trained.

A candidate is described by a small spec (a dict, as in the config):
  region      {layers, modules, softmask?}    - the coarse level (full SFT when both are 'all';
                                                 with softmask, full SFT is the V-SoftMask baseline)
  lora        {method: lora, rank, alpha, roles, dropout?}
  l2          {method: l2, lam}                - full SFT pulled towards the base weights
  hft         {method: hft}                    - a seeded random half of each layer's matrices
  last_n      {method: last_n, n}              - LLaMA-Factory's freeze tuning
  wise_ft     {method: wise_ft, alpha}         - (1 - alpha) base + alpha full SFT, no training
Search nodes need no spec in the config: their ids ('0.25-0.5_ffn', '0-0.5_mha+ffn_softmask')
are parsed back into specs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cofitune import regions

BASE_ID = "base"
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
METHODS = ("region", "lora", "l2", "hft", "last_n", "wise_ft")
REGION_ID = re.compile(r"(?P<a>[0-9.]+)-(?P<b>[0-9.]+)_(?P<modules>[a-z+]+?)(?P<softmask>_softmask)?")


@dataclass(frozen=True)
class Candidate:
    id: str
    method: str  # base, full_sft, v_softmask, region, region+softmask, lora, l2, hft, last_n, wise_ft
    layer_range: tuple[float, float] | None = None
    module_set: str = ""
    softmask: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def trains(self) -> bool:
        """Whether a training job makes it (base is the base; Wise-FT interpolates)."""
        return self.method not in ("base", "wise_ft")

    def trainable_names(self, model: nn.Module, module_sets: Mapping[str, Sequence[str]] | None = None, seed: int = 0) -> list[str]:
        """The base-model tensors this candidate changes (LoRA: the tensors its adapters merge into)."""
        from cofitune import baselines

        if self.method in ("base", "wise_ft"):
            return []
        if self.method == "hft":
            return baselines.hft_trainable_names(model, seed)
        if self.method == "last_n":
            return baselines.last_n_layers_names(model, int(self.options["n"]))
        if self.method == "lora":
            return [n for n, _ in model.named_parameters() if any(n.endswith(f".{t}.weight") for t in baselines.lora_targets(model, self.options["roles"]))]
        names = regions.select_parameters(model, self.layer_range, self.module_set or "all", dict(module_sets or {}))
        if not names:
            n = len(regions.decoder_layers(model))
            raise ValueError(f"candidate {self.id!r}: layer range {self.layer_range} selects no layer of a {n}-layer model")
        return names

    def layer_indices(self, n_layers: int) -> list[int]:
        if self.method in ("base", "lora", "hft"):
            return []
        if self.method == "last_n":
            return list(range(n_layers - int(self.options["n"]), n_layers))
        return regions.layer_indices(self.layer_range or (0.0, 1.0), n_layers)

    def describe(self) -> dict[str, Any]:
        is_region = self.method in ("full_sft", "v_softmask", "region", "region+softmask", "l2")
        return {
            "candidate": self.id,
            "method": self.method,
            "layer_range": regions.format_layer_range(self.layer_range or (0.0, 1.0)) if is_region else "",
            "module_set": self.module_set if is_region else "",
            "softmask": self.softmask,
        }


def candidate_from_spec(spec: Mapping[str, Any]) -> Candidate:
    method = spec.get("method", "region")
    if method not in METHODS:
        raise ValueError(f"unknown candidate method {method!r}; known: {', '.join(METHODS)}")
    if method == "region":
        candidate = _region(spec)
    else:
        options = {k: v for k, v in spec.items() if k not in ("id", "method")}
        full = (None, "all") if method == "l2" else (None, "")
        candidate = Candidate(spec.get("id") or _baseline_id(method, options), method, *full, options=options)
    if not re.fullmatch(ID_PATTERN, candidate.id) or candidate.id == BASE_ID:
        raise ValueError(f"candidate id {candidate.id!r} must match {ID_PATTERN} and not be {BASE_ID!r}")
    return candidate


def _region(spec: Mapping[str, Any]) -> Candidate:
    modules = spec.get("modules", "all")
    layers = spec.get("layers", "all")
    softmask = bool(spec.get("softmask", False))
    if layers == "all" and modules == "all":
        method = default_id = "v_softmask" if softmask else "full_sft"
        return Candidate(spec.get("id") or default_id, method, None, "all", softmask)
    layer_range = regions.parse_layer_range(layers)
    default_id = f"{regions.format_layer_range(layer_range)}_{modules}" + ("_softmask" if softmask else "")
    method = "region+softmask" if softmask else "region"
    return Candidate(spec.get("id") or default_id, method, layer_range, modules, softmask)


def _baseline_id(method: str, options: Mapping[str, Any]) -> str:
    if method == "wise_ft":
        return f"wise_ft_{float(options['alpha']):g}"
    if method == "last_n":
        return f"last_{int(options['n'])}"
    return method


def spec_from_id(candidate_id: str) -> dict[str, Any]:
    """A search node's (or full SFT's) spec from its id, so the DAG needs no list of them."""
    if candidate_id in ("full_sft", "v_softmask"):
        return {"layers": "all", "modules": "all", "softmask": candidate_id == "v_softmask"}
    match = REGION_ID.fullmatch(candidate_id)
    if not match:
        raise KeyError(f"candidate {candidate_id!r} is neither configured nor a region id like '0.25-0.5_ffn'")
    return {"layers": [float(match["a"]), float(match["b"])], "modules": match["modules"], "softmask": bool(match["softmask"])}


def baseline_specs(baselines: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The config's `baselines` switches -> candidate specs, in a fixed order."""
    specs: list[dict[str, Any]] = []
    if baselines.get("full_sft", True):
        specs.append({"layers": "all", "modules": "all"})
    if baselines.get("v_softmask", True):
        specs.append({"layers": "all", "modules": "all", "softmask": True})
    lora = baselines.get("lora", {})
    if lora.get("enabled"):
        specs.append({"method": "lora", **{k: v for k, v in lora.items() if k != "enabled"}})
    specs += [{"method": "wise_ft", "alpha": alpha} for alpha in baselines.get("wise_ft", {}).get("alphas", [])]
    l2 = baselines.get("l2", {})
    if l2.get("enabled"):
        specs.append({"method": "l2", "lam": l2["lam"]})
    if baselines.get("hft", {}).get("enabled"):
        specs.append({"method": "hft"})
    last_n = baselines.get("last_n", {})
    if last_n.get("enabled"):
        specs.append({"method": "last_n", "n": last_n["n"]})
    return specs


def candidates_from_config(specs: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The base model first, then the given specs; ids must be unique."""
    found = [Candidate(BASE_ID, "base")] + [candidate_from_spec(s) for s in specs]
    seen: set[str] = set()
    for c in found:
        if c.id in seen:
            raise ValueError(f"candidates: id {c.id!r} is used twice; give one of them an explicit 'id'")
        seen.add(c.id)
    return found


def specs_by_id(specs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Non-base candidates: id -> spec with its id filled in (what a job is given)."""
    return {c.id: {**spec, "id": c.id} for c, spec in zip(candidates_from_config(specs)[1:], specs, strict=True)}
