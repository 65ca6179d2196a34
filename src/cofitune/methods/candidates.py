"""Candidates: every model a run evaluates, the base model included, and their ids.

A candidate is described by a small spec (a dict, as in the config):
  region      {layers, modules, softmask?}    - the coarse level (full SFT when both are 'all';
                                                 with softmask, full SFT is the V-SoftMask baseline)
  lora        {method: lora, rank, alpha, roles, dropout?}
  l2          {method: l2, lam}                - full SFT pulled towards the base weights
  hft         {method: hft}                    - a seeded random half of each layer's matrices
  last_n      {method: last_n, n}              - LLaMA-Factory's freeze tuning
  wise_ft     {method: wise_ft, alpha}         - (1 - alpha) base + alpha full SFT, no training
  spectrum    {method: spectrum, fraction}     - the matrices whose singular values stand out most
  mofo        {method: mofo, fraction?}        - full SFT, each step changing the top-momentum entries
  a region with {softmask: true, softmask_control: uniform | shuffled} is a control of the fine
  level: the same region and average rate, the importances made uniform per layer or shuffled.
What each method does lives in `cofitune.methods.recipes`. Region ids are built by `region_id` and
parsed by `parse_region_id`, and by nothing else: search nodes ('0.25-0.5_ffn',
'0-0.5_mha+ffn_softmask') and the fine level's controls ('0-0.5_mha+ffn_softmask-uniform') need
no spec in the config, their ids are parsed back into specs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cofitune.methods.recipes import CONFIG_METHODS, Method, Recipe
from cofitune.models import regions

BASE_ID = "base"
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
SOFTMASK_SUFFIX = "_softmask"
FULL_SFT_IDS = {False: Method.FULL_SFT.value, True: Method.V_SOFTMASK.value}
# Module-set names carry no underscore, so '<range>_<modules>[_softmask]' parses one way only.
MODULE_SET_PATTERN = r"[a-z][a-z0-9+]*"
_REGION_ID = re.compile(rf"(?P<range>all|[0-9.]+-[0-9.]+)_(?P<modules>{MODULE_SET_PATTERN}?)(?P<softmask>{SOFTMASK_SUFFIX})?")
CONTROLS = ("uniform", "shuffled")  # the fine level's controls (`cofitune.fine.masking.controlled`)
CONTROL_SEPARATOR = "-"  # a control's id: its soft-masked region's id, '-', the control

LayerRange = tuple[float, float]


def region_id(layer_range: LayerRange | None, module_set: str, softmask: bool = False, control: str | None = None) -> str:
    """The id of a region candidate: '0.25-0.5_ffn', '0-0.5_mha+ffn_softmask'; every layer and
    module is full SFT ('full_sft', or 'v_softmask' with the soft-mask). A control of the fine
    level appends '-<control>' to the soft-masked id: '0-0.5_mha+ffn_softmask-uniform'."""
    layer_range = tuple(layer_range or (0.0, 1.0))
    if control is not None:
        if control not in CONTROLS:
            raise ValueError(f"unknown softmask_control {control!r}; known: {', '.join(CONTROLS)}")
        if not softmask:
            raise ValueError(f"softmask_control {control!r} is a control of the soft-mask: it needs softmask: true")
        return f"{region_id(layer_range, module_set, True)}{CONTROL_SEPARATOR}{control}"
    if layer_range == (0.0, 1.0) and module_set == "all":
        return FULL_SFT_IDS[softmask]
    return f"{regions.format_layer_range(layer_range)}_{module_set}" + (SOFTMASK_SUFFIX if softmask else "")


def parse_region_id(candidate_id: str) -> tuple[LayerRange, str, bool]:
    """The inverse of `region_id` for regions without a control: (layer range, module set, softmask)."""
    layer_range, module_set, softmask, control = parse_region_control(candidate_id)
    if control is not None:
        raise KeyError(f"candidate {candidate_id!r} is a control of the fine level, not a search node")
    return layer_range, module_set, softmask


def parse_region_control(candidate_id: str) -> tuple[LayerRange, str, bool, str | None]:
    """The inverse of `region_id`: (layer range, module set, softmask, control or None)."""
    base, sep, control = candidate_id.rpartition(CONTROL_SEPARATOR)
    if sep and control in CONTROLS:
        layer_range, module_set, softmask, _ = parse_region_control(base)
        if softmask:
            return layer_range, module_set, True, control
    for softmask, full_id in FULL_SFT_IDS.items():
        if candidate_id == full_id:
            return (0.0, 1.0), "all", softmask, None
    match = _REGION_ID.fullmatch(candidate_id)
    if not match:
        raise KeyError(f"candidate {candidate_id!r} is neither configured nor a region id like '0.25-0.5_ffn'")
    return regions.parse_layer_range(match["range"]), match["modules"], bool(match["softmask"]), None


REPLICATE_SUFFIX = "_seed"
_REPLICATE_ID = re.compile(rf"(?P<model>.+){REPLICATE_SUFFIX}(?P<seed>[0-9]+)")


def replicate_id(candidate_id: str, seed: int, first_seed: int) -> str:
    """The id of a candidate trained under another seed: '0.25-0.5_ffn_softmask_seed1235'. The run's
    own seed keeps the plain id, so adding replicates retrains nothing that exists."""
    return candidate_id if seed == first_seed else f"{candidate_id}{REPLICATE_SUFFIX}{seed}"


def parse_replicate(candidate_id: str) -> tuple[str, int | None]:
    """(the model's id, the replicate's seed) for a replicate id; (the id, None) for any other."""
    match = _REPLICATE_ID.fullmatch(candidate_id)
    return (match["model"], int(match["seed"])) if match else (candidate_id, None)


def training_seed(candidate_id: str, run_seed: int) -> int:
    """The seed a candidate trains under: a replicate's own, otherwise the run's (recorded in its TrainRecord)."""
    seed = parse_replicate(candidate_id)[1]
    return run_seed if seed is None else seed


def replicate_seeds(replicates: Mapping[str, Any], seed: int) -> list[int]:
    """The training seeds of a replicated model: the run's seed first, then `seeds - 1` more (or the list given)."""
    seeds = replicates.get("seeds", 1)
    listed = [seed, *seeds] if isinstance(seeds, list) else [seed + k for k in range(seeds)]
    return list(dict.fromkeys(listed))


# The groups `replicates.models` may name besides candidate and search-node ids.
REPLICATE_GROUPS = ("final", "final_unmasked", "final_controls", "baselines", "search")


def with_replicates(ids: Sequence[str], groups: Mapping[str, Sequence[str]], replicates: Mapping[str, Any], seed: int,
                    trains: Callable[[str], bool]) -> list[str]:
    """`ids`, each replicated model followed by the ids of its other seeds. `replicates.models` names
    groups ('final', 'baselines', 'search': their ids in `groups`) or ids; models that train nothing
    (the base model, Wise-FT) have no seed to vary and are never replicated."""
    chosen = {i for name in replicates.get("models", []) for i in groups.get(name, [name])}
    seeds = replicate_seeds(replicates, seed)
    out = []
    for candidate_id in ids:
        out.append(candidate_id)
        if candidate_id in chosen and trains(candidate_id):
            out += [replicate_id(candidate_id, s, seed) for s in seeds[1:]]
    return out


@dataclass(frozen=True)
class Candidate:
    id: str
    method: Method
    layer_range: LayerRange | None = None  # None: every layer
    module_set: str = ""
    softmask: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    control: str | None = None  # a control of the fine level: 'uniform' or 'shuffled' importances

    @property
    def recipe(self) -> Recipe:
        return self.method.recipe

    @property
    def trains(self) -> bool:
        return self.recipe.trains

    def trainable_names(self, model: nn.Module, module_sets: Mapping[str, Sequence[str]] | None = None, seed: int = 0) -> list[str]:
        """The base-model tensors this candidate changes (LoRA: the tensors its adapters merge into)."""
        return self.recipe.trainable_names(self, model, module_sets or {}, seed)

    def layer_indices(self, n_layers: int) -> list[int]:
        return self.recipe.layer_indices(self, n_layers)

    def describe(self) -> dict[str, Any]:
        """The columns that say what it is; layer_range in the tables' vocabulary ('0.25-0.5', 'all')."""
        is_region = self.recipe.is_region
        return {
            "candidate": self.id,
            "method": self.method.value,
            "layer_range": regions.format_layer_range(self.layer_range or (0.0, 1.0)) if is_region else "",
            "module_set": self.module_set if is_region else "",
            "softmask": self.softmask,
            "mask_control": self.control or "",
        }


BASE = Candidate(BASE_ID, Method.BASE)


def candidate_from_spec(spec: Mapping[str, Any]) -> Candidate:
    method = spec.get("method", Method.REGION.value)
    if method not in {m.value for m in CONFIG_METHODS}:
        raise ValueError(f"unknown candidate method {method!r}; known: {', '.join(m.value for m in CONFIG_METHODS)}")
    method = Method(method)
    if method is Method.REGION:
        candidate = _region(spec)
    else:
        options = {k: v for k, v in spec.items() if k not in ("id", "method", "training")}
        layer_range, module_set = (None, "all") if method.recipe.is_region else (None, "")  # L2, MoFO: every tensor
        candidate_id = spec.get("id") or method.recipe.default_id(options)
        candidate = Candidate(candidate_id, method, layer_range, module_set, options=options)
    if not re.fullmatch(ID_PATTERN, candidate.id) or candidate.id == BASE_ID:
        raise ValueError(f"candidate id {candidate.id!r} must match {ID_PATTERN} and not be {BASE_ID!r}")
    return candidate


def _region(spec: Mapping[str, Any]) -> Candidate:
    modules = spec.get("modules", "all")
    layers = spec.get("layers", "all")
    softmask = bool(spec.get("softmask", False))
    control = spec.get("softmask_control")
    layer_range = regions.parse_layer_range(layers)
    default_id = region_id(layer_range, modules, softmask, control)
    if control is not None:
        full = default_id.startswith(FULL_SFT_IDS[True])
        return Candidate(spec.get("id") or default_id, Method.MASK_CONTROL, None if full else layer_range, "all" if full else modules,
                         True, control=control)
    if default_id in FULL_SFT_IDS.values():
        method = Method.V_SOFTMASK if softmask else Method.FULL_SFT
        return Candidate(spec.get("id") or default_id, method, None, "all", softmask)
    method = Method.REGION_SOFTMASK if softmask else Method.REGION
    return Candidate(spec.get("id") or default_id, method, layer_range, modules, softmask)


def unmasked_region(candidate_id: str) -> str | None:
    """The id of the same region without the soft-mask, for a soft-masked region id; else None."""
    try:
        layer_range, module_set, softmask = parse_region_id(candidate_id)
    except KeyError:  # not a region (e.g. a configured baseline)
        return None
    return region_id(layer_range, module_set, False) if softmask else None


def control_region(candidate_id: str, control: str) -> str | None:
    """The id of a soft-masked region's control ('uniform' or 'shuffled' importances); else None."""
    try:
        layer_range, module_set, softmask = parse_region_id(candidate_id)
    except KeyError:
        return None
    return region_id(layer_range, module_set, True, control) if softmask else None


def spec_from_id(candidate_id: str) -> dict[str, Any]:
    """A search node's (or full SFT's, or a control's) spec from its id, so the DAG needs no list of them."""
    layer_range, module_set, softmask, control = parse_region_control(candidate_id)
    layers = "all" if layer_range == (0.0, 1.0) else list(layer_range)
    spec = {"layers": layers, "modules": module_set, "softmask": softmask}
    return {**spec, "softmask_control": control} if control else spec


def candidates_from_config(specs: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The base model first, then the given specs; ids must be unique."""
    found = [BASE] + [candidate_from_spec(s) for s in specs]
    seen: set[str] = set()
    for c in found:
        if c.id in seen:
            raise ValueError(f"candidates: id {c.id!r} is used twice; give one of them an explicit 'id'")
        seen.add(c.id)
    return found


def specs_by_id(specs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Non-base candidates: id -> spec with its id filled in (what a job is given)."""
    return {c.id: {**spec, "id": c.id} for c, spec in zip(candidates_from_config(specs)[1:], specs, strict=True)}
