"""Training methods: the one place where each kind of candidate is defined.

A method says which base-model tensors a candidate trains, how the network is set up for the
loop (frozen tensors, LoRA adapters), what extra gradient terms it adds (L2), which tensors it
hands back, and how people see it in tables. Adding a baseline means: a `Recipe` here, its
`Method` value, its line in `baseline_specs` if the config switches it on, and its keys in the
config schema. Nothing else branches on method names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Protocol

from torch import nn

from cofitune.models import regions

log = logging.getLogger(__name__)



class Candidate(Protocol):
    """What a recipe reads of a candidate (`cofitune.methods.candidates.Candidate` is one); a protocol, so
    that the methods do not import the candidates that are built from them."""

    id: str
    layer_range: tuple[float, float] | None
    module_set: str
    softmask: bool
    options: Mapping[str, Any]
    control: str | None


class Method(str, Enum):
    """Every method a candidate can have; the value is what tables and records store."""

    BASE = "base"
    FULL_SFT = "full_sft"
    V_SOFTMASK = "v_softmask"
    REGION = "region"
    REGION_SOFTMASK = "region+softmask"
    MASK_CONTROL = "region+mask_control"  # the fine level's controls: uniform or shuffled importances
    LORA = "lora"
    L2 = "l2"
    HFT = "hft"
    LAST_N = "last_n"
    WISE_FT = "wise_ft"
    SPECTRUM = "spectrum"
    MOFO = "mofo"

    def __str__(self) -> str:
        return self.value

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self]

    @property
    def config_key(self) -> str:
        """The config key a baseline of this method comes from, for messages."""
        return self.recipe.config_key or f"baselines.{self.value}"


# What a config candidate may name as `method` (the region variants follow from layers/modules/softmask).
CONFIG_METHODS = (Method.REGION, Method.LORA, Method.L2, Method.HFT, Method.LAST_N, Method.WISE_FT, Method.SPECTRUM, Method.MOFO)


class Recipe:
    """Defaults: trains the tensors it names, with every other tensor frozen."""

    label = ""
    trains = True  # whether a training job makes it (the base model and Wise-FT need none)
    is_region = False  # layer_range and module_set describe what it trains
    is_search_node = False  # rows are named by their region id
    adds_weights = False  # creates tensors the base checkpoint does not hold (LoRA's adapters)
    config_key: str | None = None  # the config key of its baseline, when not baselines.<method>

    def default_id(self, options: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def trainable_names(self, candidate: Candidate, model: nn.Module, module_sets: Mapping[str, Sequence[str]], seed: int) -> list[str]:
        return []

    def layer_indices(self, candidate: Candidate, n_layers: int) -> list[int]:
        return []

    def check(self, candidate: Candidate, module_sets: Mapping[str, Sequence[str]] | None) -> None:
        """Config-time checks that need no model (raise ValueError)."""

    def config_errors(self, candidate: Candidate, config: Mapping[str, Any]) -> list[str]:
        """What this method may not be combined with in a config (checked before any job)."""
        return []

    def derived_from(self, candidate: Candidate) -> str | None:
        """The id of the trained model whose weights this one is made from, without a training of
        its own (the DAG's `derive_weights` rule); None: a training job makes it, or nothing does."""
        return None

    def derive(self, base: Mapping[str, Any], parent: Mapping[str, Any], candidate: Candidate) -> dict:
        """The tensors of a derived model from the base's and its parent's (see `derived_from`)."""
        raise NotImplementedError(f"{self.label} is not derived from another model")

    def waits_for_final(self, candidate: Candidate) -> bool:
        """Whether it can be set up only once the CoFiTune model is trained (its budget is that model's)."""
        return False

    def network(self, model: nn.Module, candidate: Candidate, trainable: Sequence[str], seed: int) -> nn.Module:
        regions.freeze_all_but(model, trainable)
        return model

    def grad_transforms(self, net: nn.Module, candidate: Candidate) -> list[Callable[[nn.Module], None]]:
        return []

    def update_fraction(self, candidate: Candidate) -> float | None:
        """The share of each trained tensor one optimizer step may change (MoFO); None: AdamW's all."""
        return None

    def trained_tensors(self, net: nn.Module, candidate: Candidate, trainable: Sequence[str]) -> dict:
        keep = set(trainable)
        return {n: p for n, p in net.named_parameters() if n in keep}

    def display(self, row: Mapping[str, Any]) -> str:
        """How the tables name a model, from its row (`candidate`, `mask_control`)."""
        lr = lr_of_variant(row["candidate"])
        return self.label if lr is None else f"{self.label} (lr {lr:g})"


class BaseRecipe(Recipe):
    label = "Base"
    trains = False


class RegionRecipe(Recipe):
    """The coarse level: a layer range x a module set (every layer and module: full SFT)."""

    is_region = True

    def __init__(self, label: str, is_search_node: bool):
        self.label = label
        self.is_search_node = is_search_node

    def trainable_names(self, candidate, model, module_sets, seed):
        names = regions.select_parameters(model, candidate.layer_range, candidate.module_set or "all", dict(module_sets or {}))
        if not names:
            n = len(regions.decoder_layers(model))
            raise ValueError(f"candidate {candidate.id!r}: layer range {candidate.layer_range} selects no layer of a {n}-layer model")
        return names

    def layer_indices(self, candidate, n_layers):
        return regions.layer_indices(candidate.layer_range or (0.0, 1.0), n_layers)

    def check(self, candidate, module_sets):
        regions.resolve_roles(candidate.module_set, dict(module_sets or {}))


class MaskControlRecipe(RegionRecipe):
    """A control of the fine level: a soft-masked region whose importances are made uniform per
    layer (the same average rate, no selectivity) or shuffled within each layer (`cofitune.fine.masking`)."""

    def __init__(self):
        super().__init__("soft-mask control", is_search_node=False)

    def display(self, row):
        return f"{row['mask_control']} mask (control)"


class L2Recipe(RegionRecipe):
    """Full SFT plus lam * sum ||theta - theta_base||^2, added as an exact gradient term."""

    def __init__(self):
        super().__init__("L2 to base", is_search_node=False)

    def default_id(self, options):
        return Method.L2.value

    def grad_transforms(self, net, candidate):
        from cofitune.methods.baselines import L2Anchor

        return [L2Anchor(net, float(candidate.options["lam"]))]


class MofoRecipe(RegionRecipe):
    """MoFO (Chen et al. 2024): full SFT whose optimizer changes, in each step, only the `fraction`
    of each tensor's entries with the largest momentum (`cofitune.training.mofo`)."""

    def __init__(self):
        super().__init__("MoFO", is_search_node=False)

    def default_id(self, options):
        return f"mofo_{self._fraction(options):g}"

    def update_fraction(self, candidate):
        return self._fraction(candidate.options)

    def config_errors(self, candidate, config):
        if config.get("training", {}).get("cpu_offload"):
            return [f"baselines.mofo / method: mofo ({candidate.id}): not with training.cpu_offload (MoFO gathers each "
                    "tensor's momentum on the device every step); turn one of them off"]
        return []

    @staticmethod
    def _fraction(options: Mapping[str, Any]) -> float:
        from cofitune.training.mofo import DEFAULT_FRACTION

        return float(options.get("fraction", DEFAULT_FRACTION))


class LoraRecipe(Recipe):
    label = "LoRA"
    adds_weights = True

    def default_id(self, options):
        return Method.LORA.value

    def trainable_names(self, candidate, model, module_sets, seed):
        """The base tensors its adapters merge into."""
        from cofitune.methods.baselines import lora_targets

        targets = lora_targets(model, candidate.options["roles"])
        return [n for n, _ in model.named_parameters() if any(n.endswith(f".{t}.weight") for t in targets)]

    def network(self, model, candidate, trainable, seed):
        from cofitune.methods.baselines import wrap_lora

        opts = candidate.options
        return wrap_lora(model, int(opts["rank"]), float(opts["alpha"]), opts["roles"], float(opts.get("dropout", 0.0)), seed)

    def trained_tensors(self, net, candidate, trainable):
        from cofitune.methods.baselines import merged_lora_tensors

        return merged_lora_tensors(net)


class HftRecipe(Recipe):
    label = "HFT"

    def default_id(self, options):
        return Method.HFT.value

    def trainable_names(self, candidate, model, module_sets, seed):
        from cofitune.methods.baselines import hft_trainable_names

        return hft_trainable_names(model, seed)


class LastNRecipe(Recipe):
    label = "last-n layers"

    def default_id(self, options):
        return f"last_{int(options['n'])}"

    def trainable_names(self, candidate, model, module_sets, seed):
        from cofitune.methods.baselines import last_n_layers_names

        return last_n_layers_names(model, int(candidate.options["n"]))

    def layer_indices(self, candidate, n_layers):
        return list(range(n_layers - int(candidate.options["n"]), n_layers))


SPECTRUM_MATCHES_FINAL = "final"  # the `budget` option: as many parameters as the CoFiTune model trains


class SpectrumRecipe(Recipe):
    """Spectrum (Hartford et al. 2024): the weight matrices whose singular values stand highest above
    random-matrix noise, chosen from the weights alone: the top `fraction` of each module type, or
    with `budget: final` at most as many parameters as the CoFiTune model trains (`budget_params`,
    which the training stage reads from that model's record)."""

    label = "Spectrum"

    def default_id(self, options):
        if options.get("budget") == SPECTRUM_MATCHES_FINAL:
            return f"spectrum_{SPECTRUM_MATCHES_FINAL}"
        return f"spectrum_{float(options.get('fraction', 0.25)):g}"

    def waits_for_final(self, candidate):
        return candidate.options.get("budget") == SPECTRUM_MATCHES_FINAL

    def config_errors(self, candidate, config):
        if self.waits_for_final(candidate) and config.get("search", {}).get("mode", "greedy") == "off":
            return [f"baselines.spectrum.match_final / budget: final ({candidate.id}): search.mode is off, so there is no "
                    "CoFiTune model whose budget to match"]
        return []

    def trainable_names(self, candidate, model, module_sets, seed):
        from cofitune.methods.spectrum import spectrum_selection

        if any(p.is_meta for p in model.parameters()):
            raise ValueError("Spectrum ranks matrices by their weights: it needs a loaded model (not training.sharding: fsdp)")
        options = candidate.options
        if options.get("budget") == SPECTRUM_MATCHES_FINAL:
            if "budget_params" not in options:
                raise ValueError(f"candidate {candidate.id!r} matches the final model's budget: give its trained parameters")
            names, record = spectrum_selection(model, budget_params=int(options["budget_params"]))
        else:
            names, record = spectrum_selection(model, fraction=float(options.get("fraction", 0.25)))
        if "budget_params" in options:
            picked = sum(r["numel"] for r in record if r["selected"])
            log.info("Spectrum's budget: %d parameters (the final model's); picked %d (%.1f%%)", int(options["budget_params"]),
                     picked, 100.0 * picked / max(int(options["budget_params"]), 1))
        log.info("Spectrum picked %d of %d matrices: %s", len(names), len(record),
                 ", ".join(f"{r['name']} (SNR {r['snr']:.3g})" for r in record if r["selected"]))
        return names

    def layer_indices(self, candidate, n_layers):
        return list(range(n_layers))


class WiseFtRecipe(Recipe):
    """(1 - alpha) base + alpha full SFT: interpolated, not trained."""

    label = "Wise-FT"
    trains = False
    config_key = "baselines.wise_ft.alphas"

    def derived_from(self, candidate):
        return Method.FULL_SFT.value

    def derive(self, base, parent, candidate):
        from cofitune.methods.baselines import wise_ft

        return wise_ft(base, parent, float(candidate.options["alpha"]))

    def default_id(self, options):
        return f"wise_ft_{float(options['alpha']):g}"

    def layer_indices(self, candidate, n_layers):
        return list(range(n_layers))

    def display(self, row):
        return f"Wise-FT ({row['candidate'].removeprefix('wise_ft_')})"


LR_SUFFIX = "_lr"


def lr_variant_id(candidate_id: str, learning_rate: float) -> str:
    """The id of a candidate trained at another learning rate: full_sft -> full_sft_lr0.0001."""
    return f"{candidate_id}{LR_SUFFIX}{learning_rate:g}"


def lr_of_variant(candidate_id: str) -> float | None:
    """The learning rate a variant id names, or None for an id that names none."""
    _, sep, value = candidate_id.rpartition(LR_SUFFIX)
    try:
        return float(value) if sep else None
    except ValueError:
        return None


RECIPES: dict[Method, Recipe] = {
    Method.BASE: BaseRecipe(),
    Method.FULL_SFT: RegionRecipe("Full SFT", is_search_node=False),
    Method.V_SOFTMASK: RegionRecipe("V-SoftMask", is_search_node=False),
    Method.REGION: RegionRecipe("region", is_search_node=True),
    Method.REGION_SOFTMASK: RegionRecipe("region + soft-mask", is_search_node=True),
    Method.MASK_CONTROL: MaskControlRecipe(),
    Method.LORA: LoraRecipe(),
    Method.L2: L2Recipe(),
    Method.HFT: HftRecipe(),
    Method.LAST_N: LastNRecipe(),
    Method.WISE_FT: WiseFtRecipe(),
    Method.SPECTRUM: SpectrumRecipe(),
    Method.MOFO: MofoRecipe(),
}


def baseline_errors(config: Mapping[str, Any]) -> list[str]:
    """What the config's `baselines` section may not say: full SFT's extra learning rates must
    differ from the one full SFT itself trains at."""
    extra = config.get("baselines", {}).get("full_sft")
    from cofitune.training.loop import TrainSettings

    default = config.get("training", {}).get("learning_rate", TrainSettings.learning_rate)  # the schema's default too
    if isinstance(extra, list) and default in extra:
        return [f"baselines.full_sft: {default:g} is training.learning_rate, at which full_sft already trains; list only other rates"]
    return []


# Regions a user would pick without a search (`baselines.fixed_rules`): (layer range, module set).
FIXED_RULES: dict[str, tuple[tuple[float, float], str]] = {
    "paper": ((0.25, 0.5), "ffn"),  # the paper's answer on its models: the FFN of the second quarter
    "middle": ((0.25, 0.75), "mha+ffn"),  # the middle block of the depth, every matrix of its layers
}


def fixed_rule_specs(baselines: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """rule name -> the region spec of each enabled fixed rule. Its id is the region's own, so a rule
    the search also trains is one training, scored on both item splits."""
    return {name: {"layers": list(FIXED_RULES[name][0]), "modules": FIXED_RULES[name][1]}
            for name in baselines.get("fixed_rules", [])}


def baseline_specs(baselines: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The config's `baselines` switches -> candidate specs, in a fixed order."""
    specs: list[dict[str, Any]] = []
    full_sft = baselines.get("full_sft", True)
    if full_sft:
        specs.append({"layers": "all", "modules": "all"})
    for lr in full_sft if isinstance(full_sft, list) else []:  # the same training at other learning rates
        specs.append({"layers": "all", "modules": "all", "id": lr_variant_id(Method.FULL_SFT.value, lr),
                      "training": {"learning_rate": lr}})
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
    spectrum = baselines.get("spectrum", {})
    if spectrum.get("enabled"):
        specs.append({"method": "spectrum", "budget": SPECTRUM_MATCHES_FINAL} if spectrum.get("match_final")
                     else {"method": "spectrum", "fraction": spectrum.get("fraction", 0.25)})
    mofo = baselines.get("mofo", {})
    if mofo.get("enabled"):
        specs.append({"method": "mofo", **({"fraction": mofo["fraction"]} if "fraction" in mofo else {})})
    return specs + list(fixed_rule_specs(baselines).values())
