"""Candidate ids: one builder and one parser, every id round-trips; specs from the config."""

from __future__ import annotations

import itertools

import pytest

from cofitune.coarse.search import Node
from cofitune.methods.candidates import (
    BASE_ID,
    candidate_from_spec,
    candidates_from_config,
    parse_region_id,
    region_id,
    spec_from_id,
    specs_by_id,
)
from cofitune.methods.recipes import CONFIG_METHODS, Method, baseline_specs
from cofitune.models.regions import NAMED_RANGES, format_layer_range

RANGES = [*NAMED_RANGES.values(), (0.1, 0.3), (0.125, 0.875)]
MODULE_SETS = ["all", "ffn", "mha", "mha+ffn", "attn2", "o+gate"]
ALL_BASELINES = {"full_sft": True, "v_softmask": True, "lora": {"enabled": True, "rank": 4, "alpha": 8, "roles": ["q", "v"]},
                 "wise_ft": {"alphas": [0.25, 0.5]}, "l2": {"enabled": True, "lam": 0.01}, "hft": {"enabled": True},
                 "last_n": {"enabled": True, "n": 2}}


@pytest.mark.parametrize(("layer_range", "module_set", "softmask"), list(itertools.product(RANGES, MODULE_SETS, [False, True])))
def test_every_region_id_round_trips_through_its_spec(layer_range, module_set, softmask):
    candidate_id = region_id(layer_range, module_set, softmask)
    assert parse_region_id(candidate_id) == (layer_range, module_set, softmask)
    candidate = candidate_from_spec(spec_from_id(candidate_id))
    assert candidate.id == candidate_id
    assert (candidate.layer_range or (0.0, 1.0), candidate.module_set, candidate.softmask) == (layer_range, module_set, softmask)
    assert candidate_from_spec({"layers": list(layer_range), "modules": module_set, "softmask": softmask}).id == candidate_id


def test_region_ids_read_like_the_tables():
    assert region_id((0.25, 0.5), "ffn") == "0.25-0.5_ffn"
    assert region_id((0.0, 0.5), "mha+ffn", softmask=True) == "0-0.5_mha+ffn_softmask"
    assert region_id((0.0, 1.0), "all") == "full_sft" and region_id(None, "all", True) == "v_softmask"
    assert region_id((0.0, 1.0), "ffn") == "all_ffn"
    # the layer_range column has one vocabulary: the id's range part, in candidates and in the search trace
    node = Node((0.25, 0.5), "ffn")
    assert candidate_from_spec(spec_from_id(node.id)).describe()["layer_range"] == format_layer_range(node.layer_range) == "0.25-0.5"


@pytest.mark.parametrize("bad", ["0.25-0.5", "q2_ffn", "0.25-0.5_FFN", "0.25-0.5_mha_ffn", "lora", "wise_ft_0.5"])
def test_what_is_not_a_region_id_is_refused(bad):
    with pytest.raises(KeyError, match="neither configured nor a region id"):
        parse_region_id(bad)


def test_baseline_ids_are_unique_and_stable():
    specs = baseline_specs(ALL_BASELINES)
    ids = list(specs_by_id(specs))
    assert ids == ["full_sft", "v_softmask", "lora", "wise_ft_0.25", "wise_ft_0.5", "l2", "hft", "last_2"]
    for candidate_id, spec in specs_by_id(specs).items():
        assert candidate_from_spec(spec).id == candidate_id
    methods = [candidate_from_spec(s).method for s in specs]
    assert methods == [Method.FULL_SFT, Method.V_SOFTMASK, Method.LORA, Method.WISE_FT, Method.WISE_FT, Method.L2, Method.HFT, Method.LAST_N]


def test_full_sft_at_extra_learning_rates_is_full_sft_with_a_training_override():
    from cofitune.methods.recipes import lr_of_variant

    specs = baseline_specs({"full_sft": [1e-4, 3e-5], "v_softmask": False})
    by_id = specs_by_id(specs)
    assert list(by_id) == ["full_sft", "full_sft_lr0.0001", "full_sft_lr3e-05"]
    assert [s.get("training") for s in by_id.values()] == [None, {"learning_rate": 1e-4}, {"learning_rate": 3e-5}]
    candidates = [candidate_from_spec(s) for s in by_id.values()]
    assert {c.method for c in candidates} == {Method.FULL_SFT} and all(c.options == {} for c in candidates)
    assert [Method.FULL_SFT.recipe.display(c.describe()) for c in candidates] == ["Full SFT", "Full SFT (lr 0.0001)", "Full SFT (lr 3e-05)"]
    assert lr_of_variant("full_sft_lr3e-05") == 3e-5 and lr_of_variant("0.25-0.5_ffn") is None and lr_of_variant("x_lrfast") is None
    lora = candidate_from_spec({"method": "lora", "rank": 4, "training": {"learning_rate": 1e-3}})
    assert lora.options == {"rank": 4}  # the override is training's business, not the method's


def test_the_config_methods_are_the_schema_enum():
    from cofitune.infra import io
    from tests.unit.configuration.test_checks import SCHEMA

    schema = io.read_yaml(SCHEMA)
    assert schema["properties"]["candidates"]["items"]["properties"]["method"]["enum"] == [m.value for m in CONFIG_METHODS]


def test_duplicate_and_reserved_ids_are_refused():
    with pytest.raises(ValueError, match="used twice"):
        candidates_from_config([{"layers": "q2", "modules": "ffn"}, {"layers": [0.25, 0.5], "modules": "ffn"}])
    with pytest.raises(ValueError, match="must match"):
        candidate_from_spec({"id": BASE_ID, "method": "hft"})
    with pytest.raises(ValueError, match="unknown candidate method 'dora'"):
        candidate_from_spec({"method": "dora"})


def test_what_each_method_trains(tiny_llama):
    model, _ = tiny_llama
    names = {n for n, _ in model.named_parameters()}
    full = candidate_from_spec({"layers": "all", "modules": "all"})
    assert set(full.trainable_names(model)) == names and full.layer_indices(4) == [0, 1, 2, 3]
    region = candidate_from_spec({"layers": "q2", "modules": "ffn"})
    assert region.trainable_names(model) == ["model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight"]
    lora = candidate_from_spec({"method": "lora", "rank": 2, "alpha": 4, "roles": ["q"]})
    assert lora.trainable_names(model) == [f"model.layers.{i}.self_attn.q_proj.weight" for i in range(4)]
    assert lora.layer_indices(4) == [] and not lora.describe()["layer_range"]
    last = candidate_from_spec({"method": "last_n", "n": 1})
    assert last.id == "last_1" and last.layer_indices(4) == [3] and all(n.startswith("model.layers.3.") for n in last.trainable_names(model))
    wise = candidate_from_spec({"method": "wise_ft", "alpha": 0.5})
    assert not wise.trains and wise.trainable_names(model) == [] and wise.recipe.display(wise.describe()) == "Wise-FT (0.5)"
    with pytest.raises(ValueError, match="selects no layer"):
        candidate_from_spec({"layers": [0.0, 0.1], "modules": "ffn"}).trainable_names(model)


def test_replicates_are_ids_of_the_same_model_under_other_seeds():
    from cofitune.methods.candidates import parse_replicate, replicate_id, replicate_seeds, with_replicates

    assert replicate_seeds({"seeds": 3}, 1234) == [1234, 1235, 1236]
    assert replicate_seeds({"seeds": [7, 1234, 9]}, 1234) == [1234, 7, 9]
    assert replicate_seeds({}, 5) == [5]
    assert replicate_id("0.25-0.5_ffn_softmask", 1234, 1234) == "0.25-0.5_ffn_softmask"  # the run's seed: the plain id
    assert parse_replicate(replicate_id("0.25-0.5_ffn_softmask", 1235, 1234)) == ("0.25-0.5_ffn_softmask", 1235)
    assert parse_replicate("full_sft_lr0.0001") == ("full_sft_lr0.0001", None) and parse_replicate("last_2") == ("last_2", None)
    groups = {"final": ["0.5-1_ffn_softmask"], "baselines": ["full_sft", "wise_ft_0.5"], "search": ["0.5-1_ffn"]}
    ids = ["base", "full_sft", "wise_ft_0.5", "0.5-1_ffn", "0.5-1_ffn_softmask"]
    trains = lambda c: c not in ("base", "wise_ft_0.5")  # noqa: E731
    out = with_replicates(ids, groups, {"seeds": 2, "models": ["final", "baselines"]}, 1, trains)
    assert out == ["base", "full_sft", "full_sft_seed2", "wise_ft_0.5", "0.5-1_ffn", "0.5-1_ffn_softmask", "0.5-1_ffn_softmask_seed2"]
    assert with_replicates(ids, groups, {"seeds": 1, "models": ["final"]}, 1, trains) == ids
    assert with_replicates(ids, groups, {"seeds": [5], "models": ["0.5-1_ffn"]}, 1, trains)[3:5] == ["0.5-1_ffn", "0.5-1_ffn_seed5"]


def test_the_unmasked_twin_of_a_soft_masked_region():
    from cofitune.methods.candidates import unmasked_region

    assert unmasked_region("0.25-0.5_ffn_softmask") == "0.25-0.5_ffn"
    assert unmasked_region("v_softmask") == "full_sft"
    assert unmasked_region("0.25-0.5_ffn") is None and unmasked_region("lora") is None


def test_controls_of_the_fine_level_have_ids_that_parse_back():
    from cofitune.methods.candidates import control_region, parse_region_control

    assert control_region("0.25-0.5_ffn_softmask", "uniform") == "0.25-0.5_ffn_softmask-uniform"
    assert control_region("v_softmask", "shuffled") == "v_softmask-shuffled"
    assert control_region("0.25-0.5_ffn", "uniform") is None and control_region("lora", "uniform") is None
    for control_id, layers in (("0.25-0.5_ffn_softmask-uniform", [0.25, 0.5]), ("v_softmask-shuffled", "all")):
        spec = spec_from_id(control_id)
        assert spec["softmask_control"] == control_id.rpartition("-")[2] and spec["layers"] == layers
        candidate = candidate_from_spec(spec)
        assert (candidate.id, candidate.method, candidate.softmask) == (control_id, Method.MASK_CONTROL, True)
        assert candidate.describe()["mask_control"] == candidate.control
    assert parse_region_control("0.25-0.5_ffn_softmask-uniform") == ((0.25, 0.5), "ffn", True, "uniform")
    with pytest.raises(KeyError, match="control"):
        parse_region_id("0.25-0.5_ffn_softmask-uniform")  # not a search node
    with pytest.raises(ValueError, match="needs softmask: true"):
        candidate_from_spec({"layers": "q2", "modules": "ffn", "softmask_control": "uniform"})  # a control needs the mask
    assert Method.MASK_CONTROL.recipe.display({"candidate": "0.25-0.5_ffn_softmask-uniform_seed1235", "mask_control": "uniform"}) == "uniform mask (control)"


def test_fixed_rules_are_plain_regions_whose_ids_a_search_node_shares():
    from cofitune.methods.recipes import fixed_rule_specs

    baselines = {"full_sft": False, "v_softmask": False, "fixed_rules": ["middle", "paper"]}
    assert {name: candidate_from_spec(spec).id for name, spec in fixed_rule_specs(baselines).items()} == {
        "middle": "0.25-0.75_mha+ffn", "paper": "0.25-0.5_ffn"}
    assert [candidate_from_spec(s).method for s in baseline_specs(baselines)] == [Method.REGION, Method.REGION]
    assert candidate_from_spec(spec_from_id("0.25-0.5_ffn")) == candidate_from_spec(fixed_rule_specs(baselines)["paper"])
