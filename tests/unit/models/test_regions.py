"""Coarse level: layer-range arithmetic and the exact tensors a region selects, per family."""

from __future__ import annotations

import pytest
import torch

from cofitune.models import regions


@pytest.mark.parametrize(
    ("n_layers", "layer_range", "expected"),
    [
        (32, (0.25, 0.5), range(8, 16)),
        (40, (0.25, 0.5), range(10, 20)),
        (60, (0.25, 0.5), range(15, 30)),
        (30, (0.25, 0.5), range(7, 15)),
        (30, (0.0, 0.5), range(0, 15)),
        (30, (0.25, 0.75), range(7, 22)),
        (30, (0.5, 1.0), range(15, 30)),
        (30, (0.75, 1.0), range(22, 30)),
        (32, (0.0, 1.0), range(0, 32)),
    ],
)
def test_layer_range_arithmetic_matches_the_reference(n_layers, layer_range, expected):
    assert regions.layer_indices(layer_range, n_layers) == list(expected)


def test_the_seven_ranges_partition_as_halves_and_quarters():
    for n in (30, 32, 40, 60):
        quarters = [regions.layer_indices(regions.NAMED_RANGES[q], n) for q in ("q1", "q2", "q3", "q4")]
        assert [i for q in quarters for i in q] == list(range(n))
        assert regions.layer_indices(regions.NAMED_RANGES["h2"], n) == quarters[1] + quarters[2]


@pytest.mark.parametrize("spec", ["q2", "0.25-0.5", (0.25, 0.5), [0.25, 0.5]])
def test_parse_layer_range_accepts_names_and_fractions(spec):
    assert regions.parse_layer_range(spec) == (0.25, 0.5)


@pytest.mark.parametrize("spec", ["0.5-0.25", "x", (0.0, 1.5)])
def test_parse_layer_range_rejects_bad_ranges(spec):
    with pytest.raises(ValueError):
        regions.parse_layer_range(spec)


LLAMA_LAYER = "model.layers.{}.{}.weight"


def _llama(layers, modules):
    return sorted(LLAMA_LAYER.format(i, m) for i in layers for m in modules)


@pytest.mark.parametrize(
    ("module_set", "modules"),
    [
        ("ffn", ["mlp.up_proj", "mlp.down_proj"]),
        ("mha", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]),
        ("mha+ffn", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.up_proj", "mlp.down_proj"]),
    ],
)
def test_llama_with_grouped_query_attention_selects_exact_tensors(tiny_llama, module_set, modules):
    model, _ = tiny_llama
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA really is exercised
    assert sorted(regions.select_parameters(model, (0.5, 1.0), module_set)) == _llama([2, 3], modules)


def test_gpt2_fused_attention_and_biases(tiny_gpt2):
    model, _ = tiny_gpt2
    got = sorted(regions.select_parameters(model, (0.0, 0.25), "mha+ffn"))
    assert got == sorted(
        f"transformer.h.0.{m}.{w}" for m in ("attn.c_attn", "mlp.c_fc", "mlp.c_proj") for w in ("weight", "bias")
    )
    # 'attn.c_proj' (the output projection) must not be caught by the prefix of 'mlp.c_proj' or vice versa
    assert not any("attn.c_proj" in n for n in got)


def test_gpt_neox_names(tiny_neox):
    model, _ = tiny_neox
    got = sorted(regions.select_parameters(model, (0.75, 1.0), "mha"))
    assert got == ["gpt_neox.layers.3.attention.query_key_value.bias", "gpt_neox.layers.3.attention.query_key_value.weight"]


def test_configurable_members_and_the_all_module_set(tiny_llama):
    model, _ = tiny_llama
    got = regions.select_parameters(model, (0.0, 0.25), "ffn", {"ffn": ["gate", "up", "down"]})
    assert sorted(got) == _llama([0], ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"])
    layer0 = regions.select_parameters(model, (0.0, 0.25), "all")
    assert all(n.startswith("model.layers.0.") for n in layer0) and len(layer0) == 9
    everything = regions.select_parameters(model, None, "all")
    assert everything == [n for n, _ in model.named_parameters()]


def test_bad_module_sets_and_unknown_architectures_fail_clearly(tiny_llama, tiny_gpt2):
    with pytest.raises(ValueError, match="unknown module set 'attn'"):
        regions.select_parameters(tiny_llama[0], (0.0, 0.5), "attn")
    with pytest.raises(ValueError, match=r"gpt2 models have no \['gate'\]"):
        regions.select_parameters(tiny_gpt2[0], (0.0, 0.5), "ffn", {"ffn": ["gate", "up"]})

    class Strange(torch.nn.Module):
        class config:
            model_type = "mamba"

    with pytest.raises(regions.UnsupportedArchitecture, match="'mamba' is not supported"):
        regions.select_parameters(Strange(), (0.0, 0.5), "ffn")


def test_freeze_and_count(tiny_llama):
    model, _ = tiny_llama
    names = regions.select_parameters(model, (0.25, 0.5), "ffn")
    regions.freeze_all_but(model, names)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(names)
    assert regions.count_parameters(model, names) == 2 * 64 * 128
    with pytest.raises(KeyError):
        regions.freeze_all_but(model, ["nope"])
