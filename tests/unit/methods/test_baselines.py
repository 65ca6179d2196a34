"""Baselines: HFT, last-n freeze tuning, L2 towards the base, Wise-FT, LoRA through peft."""

from __future__ import annotations

import copy
import functools
import itertools

import pytest
import torch
from accelerate import Accelerator
from hypothesis import given, settings
from hypothesis import strategies as st

from cofitune.methods.baselines import (
    L2Anchor,
    hft_trainable_names,
    last_n_layers_names,
    lora_targets,
    merged_lora_tensors,
    wise_ft,
    wrap_lora,
)
from cofitune.models import regions
from cofitune.models.modeling import build_tiny_model
from cofitune.training.loop import TrainSettings, train

ATTENTION, FFN = {"q", "k", "v", "o"}, {"gate", "up", "down"}


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _trained_modules(model, names, kind="weight"):
    """{(layer, module path)} of the trained `kind` tensors, with the category of each."""
    family = regions.family_of(model)
    out = {}
    for name in names:
        located = regions.locate_parameter(model, name)
        assert located is not None and located[1], f"{name} is not a projection inside a decoder layer"
        layer, roles, what = located
        if what == kind:
            category = "attention" if set(roles) <= ATTENTION else "ffn"
            assert set(roles) <= (ATTENTION if category == "attention" else FFN), name
            out[(layer, family.roles[roles[0]])] = category
    return out


def _per_layer(modules, category, n_layers):
    return [sum(1 for (layer, _), c in modules.items() if layer == i and c == category) for i in range(n_layers)]


# ------------------------------------------------------------------ HFT


def test_hft_trains_exactly_half_of_each_category_on_llama(tiny_llama):
    model = tiny_llama[0]
    names = hft_trainable_names(model, seed=0)
    modules = _trained_modules(model, names)
    assert len(names) == len(modules)  # llama has no biases: one weight per trained matrix
    attention, ffn = _per_layer(modules, "attention", 4), _per_layer(modules, "ffn", 4)
    assert sum(attention) == 8 and attention == [2, 2, 2, 2]  # 4 matrices per layer
    assert sum(ffn) == 6 and sorted(set(ffn)) == [1, 2]  # 3 per layer: floor/ceil alternate
    assert all(a != b for a, b in itertools.pairwise(ffn))
    assert not any("norm" in n or "embed" in n or "lm_head" in n for n in names)
    assert names == [n for n, _ in model.named_parameters() if n in set(names)]  # model order, no duplicates


def test_hft_is_reproducible_for_a_seed_and_differs_across_seeds(tiny_llama):
    model = tiny_llama[0]
    assert hft_trainable_names(model, seed=3) == hft_trainable_names(model, seed=3)
    assert hft_trainable_names(model, seed=0) != hft_trainable_names(model, seed=1)


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_neox"])
def test_hft_counts_fused_qkv_as_one_matrix_and_biases_follow_weights(fixture, request):
    model = request.getfixturevalue(fixture)[0]
    family = regions.family_of(model)
    names = hft_trainable_names(model, seed=1)
    weights, biases = _trained_modules(model, names, "weight"), _trained_modules(model, names, "bias")
    assert weights == biases  # every trained matrix brings its bias, and no bias comes alone
    # attention = {fused qkv, o}, ffn = {up, down}: one of two per layer, 4 of 8 model-wide
    assert _per_layer(weights, "attention", 4) == [1, 1, 1, 1]
    assert _per_layer(weights, "ffn", 4) == [1, 1, 1, 1]
    fused = family.roles["q"]
    assert any(path == fused for _, path in weights)
    assert all(n.startswith(family.layers_path + ".") for n in names)
    assert len(names) == 2 * len(weights)


@functools.cache
def _llama_with_layers(n_layers):
    return build_tiny_model("tiny-llama", layers=n_layers, hidden=16, heads=2, kv_heads=1, intermediate=32)[0]


@settings(max_examples=25, deadline=None)
@given(n_layers=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_hft_halves_every_category_for_any_depth(n_layers, seed):
    model = _llama_with_layers(n_layers)
    modules = _trained_modules(model, hft_trainable_names(model, seed))
    attention, ffn = _per_layer(modules, "attention", n_layers), _per_layer(modules, "ffn", n_layers)
    assert attention == [2] * n_layers
    assert all(c in (1, 2) for c in ffn) and all(a != b for a, b in itertools.pairwise(ffn))
    total = 3 * n_layers
    if total % 2 == 0:
        assert sum(ffn) == total // 2
    else:
        assert abs(2 * sum(ffn) - total) == 1


# ------------------------------------------------------------------ last-n layers


def test_last_n_layers_selects_every_parameter_of_the_last_layers(tiny_llama):
    model = tiny_llama[0]
    all_names = [n for n, _ in model.named_parameters()]
    names = last_n_layers_names(model, 1)
    assert names == [n for n in all_names if n.startswith("model.layers.3.")]
    assert "model.layers.3.input_layernorm.weight" in names and "model.layers.3.self_attn.q_proj.weight" in names
    every_layer = last_n_layers_names(model, 4)
    assert every_layer == [n for n in all_names if n.startswith("model.layers.")]
    assert "model.norm.weight" not in every_layer and "model.embed_tokens.weight" not in every_layer


def test_last_n_layers_on_gpt2(tiny_gpt2):
    names = last_n_layers_names(tiny_gpt2[0], 2)
    assert {n.split(".")[2] for n in names} == {"2", "3"}
    assert "transformer.h.3.attn.c_attn.bias" in names


@pytest.mark.parametrize("n", [0, 5, -1, 1.5, True])
def test_last_n_layers_rejects_impossible_n(tiny_llama, n):
    with pytest.raises(ValueError, match="1 <= n <= 4"):
        last_n_layers_names(tiny_llama[0], n)


# ------------------------------------------------------------------ L2 towards the base


def _region_model(model):
    model = copy.deepcopy(model)
    regions.freeze_all_but(model, regions.select_parameters(model, (0.25, 0.5), "ffn"))
    return model


UP = "model.layers.1.mlp.up_proj.weight"
DOWN = "model.layers.1.mlp.down_proj.weight"


def test_l2_penalty_and_its_gradient_are_zero_at_the_base(tiny_llama):
    model = _region_model(tiny_llama[0])
    anchor = L2Anchor(model, lam=0.7)
    assert set(anchor.anchors) == {UP, DOWN}
    assert anchor.penalty(model).item() == 0.0
    anchor(model)
    params = dict(model.named_parameters())
    for name, param in params.items():
        if name in (UP, DOWN):
            assert param.grad is not None and torch.count_nonzero(param.grad) == 0
        else:
            assert param.grad is None, name


def test_l2_penalty_and_gradient_after_a_perturbation(tiny_llama):
    model = _region_model(tiny_llama[0])
    lam = 0.25
    anchor = L2Anchor(model, lam)
    params = dict(model.named_parameters())
    base_up = params[UP].detach().clone()
    delta = 0.01 * torch.randn(base_up.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        params[UP].add_(delta)
    delta = params[UP].detach() - base_up  # the perturbation as actually stored
    torch.testing.assert_close(anchor.penalty(model), lam * delta.pow(2).sum(), rtol=1e-6, atol=0)
    existing = torch.randn(base_up.shape, generator=torch.Generator().manual_seed(1))
    params[UP].grad = existing.clone()
    anchor(model)
    torch.testing.assert_close(params[UP].grad, existing + 2 * lam * delta, rtol=1e-6, atol=1e-9)
    assert torch.count_nonzero(params[DOWN].grad) == 0  # unperturbed: created, zero
    # the grad_transform is exactly the gradient autograd gives for the penalty added to the loss
    for param in params.values():
        param.grad = None
    anchor.penalty(model).backward()
    autograd = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
    for param in params.values():
        param.grad = None
    anchor(model)
    assert set(autograd) == {UP, DOWN}
    for name, grad in autograd.items():
        torch.testing.assert_close(params[name].grad, grad, rtol=1e-6, atol=1e-9)


def test_l2_with_zero_strength_leaves_gradients_alone(tiny_llama):
    model = _region_model(tiny_llama[0])
    anchor = L2Anchor(model, lam=0.0)
    with torch.no_grad():
        dict(model.named_parameters())[UP].add_(1.0)
    anchor(model)
    assert all(p.grad is None for p in model.parameters())


def test_l2_rejects_bad_strength_and_untrainable_models(tiny_llama):
    model = _region_model(tiny_llama[0])
    for lam in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam"):
            L2Anchor(model, lam)
    regions.freeze_all_but(model, [])
    with pytest.raises(ValueError, match="no trainable parameters"):
        L2Anchor(model, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_l2_follows_the_model_to_another_device(tiny_llama):
    model = _region_model(tiny_llama[0])
    anchor = L2Anchor(model, lam=0.5)  # snapshot on CPU, then the model moves (as accelerator.prepare does)
    model.cuda()
    with torch.no_grad():
        dict(model.named_parameters())[UP].add_(0.1)
    assert anchor.penalty(model).device.type == "cuda"
    anchor(model)
    grad = dict(model.named_parameters())[UP].grad
    torch.testing.assert_close(grad, torch.full_like(grad, 2 * 0.5 * 0.1), rtol=1e-4, atol=1e-6)


def _distance_to_base(model, base):
    return sum((p.detach() - base[n]).pow(2).sum().item() for n, p in model.named_parameters() if p.requires_grad)


def test_l2_training_stays_closer_to_the_base(tiny_llama, tiny_rows):
    steps = TrainSettings(learning_rate=3e-3, max_steps=4, micro_batch_size=2, warmup_ratio=0.0, weight_decay=0.0)
    distances = {}
    for lam in (0.0, 100.0):
        model = _region_model(tiny_llama[0])
        base = _snapshot(model)
        train(model, tiny_rows, steps, Accelerator(cpu=True), pad_id=0, grad_transform=L2Anchor(model, lam))
        distances[lam] = _distance_to_base(model, base)
    assert distances[0.0] > 0
    assert distances[100.0] < 0.25 * distances[0.0]


# ------------------------------------------------------------------ Wise-FT


def _state(seed):
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(3, 4, generator=g), "b.bias": torch.randn(5, generator=g)}


def test_wise_ft_ends_are_bitwise_copies_and_the_middle_is_the_midpoint():
    base, finetuned = _state(0), _state(1)
    base["only.in.base"] = torch.ones(2)
    at0, at1, mid = wise_ft(base, finetuned, 0.0), wise_ft(base, finetuned, 1.0), wise_ft(base, finetuned, 0.5)
    assert set(at0) == set(at1) == set(mid) == set(finetuned)
    for key in finetuned:
        assert torch.equal(at0[key], base[key]) and at0[key].data_ptr() != base[key].data_ptr()
        assert torch.equal(at1[key], finetuned[key]) and at1[key].data_ptr() != finetuned[key].data_ptr()
        torch.testing.assert_close(mid[key], (base[key] + finetuned[key]) / 2, rtol=0, atol=1e-7)
    quarter = wise_ft(base, finetuned, 0.25)
    for key in finetuned:
        torch.testing.assert_close(quarter[key], 0.75 * base[key] + 0.25 * finetuned[key], rtol=1e-6, atol=1e-7)


def test_wise_ft_reports_missing_keys_shape_mismatches_and_bad_alpha():
    base, finetuned = _state(0), _state(1)
    with pytest.raises(KeyError, match=r"b\.bias"):
        wise_ft({"a.weight": base["a.weight"]}, finetuned, 0.5)
    with pytest.raises(ValueError, match=r"a\.weight"):
        wise_ft({**base, "a.weight": torch.zeros(4, 3)}, finetuned, 0.5)
    for alpha in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            wise_ft(base, finetuned, alpha)


# ------------------------------------------------------------------ LoRA


def test_lora_targets_map_roles_to_family_module_suffixes(tiny_llama, tiny_gpt2, tiny_neox):
    llama, gpt2, neox = tiny_llama[0], tiny_gpt2[0], tiny_neox[0]
    assert lora_targets(llama, ["q", "v", "up", "down"]) == [
        "self_attn.q_proj", "self_attn.v_proj", "mlp.up_proj", "mlp.down_proj"
    ]
    assert lora_targets(gpt2, ["q", "k", "v", "up"]) == ["attn.c_attn", "mlp.c_fc"]
    assert lora_targets(gpt2, ["o", "down"]) == ["attn.c_proj", "mlp.c_proj"]
    assert lora_targets(neox, ["v", "q"]) == ["attention.query_key_value"]
    with pytest.raises(ValueError, match="gate"):
        lora_targets(gpt2, ["gate"])
    with pytest.raises(ValueError, match="unknown"):
        lora_targets(llama, ["qq"])
    with pytest.raises(ValueError, match="at least one"):
        lora_targets(llama, [])


LORA_CASES = {
    "tiny_llama": (("q", "v", "up", "down"), ("self_attn.q_proj", "self_attn.v_proj", "mlp.up_proj", "mlp.down_proj")),
    "tiny_gpt2": (("q", "k", "v", "up"), ("attn.c_attn", "mlp.c_fc")),
}
RANK, ALPHA = 4, 8.0


def _randomise_lora(peft_model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                param.copy_(torch.randn(param.shape, generator=g))


@pytest.mark.parametrize("fixture", sorted(LORA_CASES))
def test_lora_wrap_trains_only_adapters_and_starts_at_the_base(fixture, request):
    roles, paths = LORA_CASES[fixture]
    model = copy.deepcopy(request.getfixturevalue(fixture)[0])
    base = _snapshot(model)
    family = regions.family_of(model)
    rng_before = torch.get_rng_state()
    peft_model = wrap_lora(model, RANK, ALPHA, roles, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # seeding does not disturb the caller's RNG
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A.default." in n or ".lora_B.default." in n for n in trainable)
    assert len(trainable) == 2 * 4 * len(paths)
    assert all(torch.count_nonzero(p) == 0 for n, p in peft_model.named_parameters() if ".lora_B." in n)
    merged = merged_lora_tensors(peft_model)
    expected = {f"{family.layers_path}.{i}.{p}.weight" for i in range(4) for p in paths}
    assert set(merged) == expected
    for key in expected:
        assert torch.equal(merged[key], base[key]), key  # B = 0: bitwise the base
    again = wrap_lora(copy.deepcopy(request.getfixturevalue(fixture)[0]), RANK, ALPHA, roles, seed=0)
    other = wrap_lora(copy.deepcopy(request.getfixturevalue(fixture)[0]), RANK, ALPHA, roles, seed=1)
    a = {n: p for n, p in peft_model.named_parameters() if ".lora_A." in n}
    assert all(torch.equal(p, dict(again.named_parameters())[n]) for n, p in a.items())
    assert not all(torch.equal(p, dict(other.named_parameters())[n]) for n, p in a.items())


@pytest.mark.parametrize("fixture", sorted(LORA_CASES))
def test_lora_merged_weights_equal_base_plus_scaled_b_times_a(fixture, request):
    roles, paths = LORA_CASES[fixture]
    original = request.getfixturevalue(fixture)[0]
    base = _snapshot(original)
    family = regions.family_of(original)
    peft_model = wrap_lora(copy.deepcopy(original), RANK, ALPHA, roles, seed=0)
    _randomise_lora(peft_model)
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}
    merged = merged_lora_tensors(peft_model)
    assert set(merged) == {f"{family.layers_path}.{i}.{p}.weight" for i in range(4) for p in paths}
    inner = peft_model.get_base_model()
    for key, weight in merged.items():
        module = inner.get_submodule(key.removesuffix(".weight"))
        a, b = module.lora_A["default"].weight.detach(), module.lora_B["default"].weight.detach()
        delta = (ALPHA / RANK) * (b @ a)  # (out, in)
        if family.transposed:
            delta = delta.T  # Conv1D stores (in, out)
        assert weight.shape == base[key].shape
        torch.testing.assert_close(weight, base[key] + delta, rtol=1e-5, atol=1e-5)
        assert (weight - base[key]).abs().max() > 1e-2, key  # the adapter really contributes
    after = peft_model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not any(getattr(m, "merged", False) for m in peft_model.modules())


def test_lora_merged_weights_reproduce_the_adapted_model(tiny_gpt2):
    original = tiny_gpt2[0]
    peft_model = wrap_lora(copy.deepcopy(original), RANK, ALPHA, ("q", "k", "v", "o", "up", "down"), seed=0)
    _randomise_lora(peft_model)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if ".lora_" in name:
                param.mul_(0.05)  # keep the adapted model numerically tame
    merged_model = copy.deepcopy(original)
    params = dict(merged_model.named_parameters())
    with torch.no_grad():
        for key, weight in merged_lora_tensors(peft_model).items():
            params[key].copy_(weight)
    ids = torch.arange(12).unsqueeze(0)
    peft_model.eval()
    with torch.no_grad():
        expected, got = peft_model(input_ids=ids).logits, merged_model(input_ids=ids).logits
        assert not torch.allclose(expected, original(input_ids=ids).logits, atol=1e-3)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_lora_rejects_bad_hyperparameters(tiny_llama):
    model = tiny_llama[0]
    for kwargs in ({"rank": 0}, {"rank": 2.5}, {"alpha": 0.0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            wrap_lora(model, **{"rank": RANK, "alpha": ALPHA, "roles": ("q",), **kwargs})


def test_spectrum_trains_the_matrices_it_ranks_highest_per_module_type(tiny_llama):
    """A planted low-rank signal makes one layer's q_proj stand out: Spectrum picks it, and the
    candidate trains exactly the selection."""
    from cofitune.methods.candidates import candidate_from_spec

    model, _ = tiny_llama
    q = model.model.layers[2].self_attn.q_proj.weight
    with torch.no_grad():
        u, v = torch.randn(q.shape[0], 1), torch.randn(1, q.shape[1])
        q.add_(5.0 * u @ v / (u.norm() * v.norm()) * q.norm())
    candidate = candidate_from_spec({"method": "spectrum", "fraction": 0.25})
    assert candidate.id == "spectrum_0.25" and candidate.trains
    names = candidate.trainable_names(model)
    assert "model.layers.2.self_attn.q_proj.weight" in names
    assert sum(".self_attn.q_proj." in n for n in names) == 1  # a quarter of 4 layers per module type
    assert all(n.endswith(".weight") and ".layers." in n for n in names)


def test_spectrum_can_match_the_final_models_budget(tiny_llama):
    from cofitune.configuration.checks import semantic_errors
    from cofitune.methods.candidates import candidate_from_spec
    from cofitune.methods.recipes import baseline_specs

    model, _ = tiny_llama
    assert baseline_specs({"full_sft": False, "v_softmask": False, "spectrum": {"enabled": True, "match_final": True}}) == [
        {"method": "spectrum", "budget": "final"}]
    candidate = candidate_from_spec({"method": "spectrum", "budget": "final"})
    assert candidate.id == "spectrum_final"
    with pytest.raises(ValueError, match="trained parameters"):
        candidate.trainable_names(model)  # the training stage adds the budget from the final model's record
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    budget = 3 * sizes["model.layers.0.mlp.down_proj.weight"] + 5
    names = candidate_from_spec({"method": "spectrum", "budget": "final", "budget_params": budget}).trainable_names(model)
    assert 0 < sum(sizes[n] for n in names) <= budget
    config = {"search": {"mode": "off"}, "baselines": {"full_sft": False, "v_softmask": False,
                                                       "spectrum": {"enabled": True, "match_final": True}}}
    assert any("no CoFiTune model" in e for e in semantic_errors(config))
    assert not any("CoFiTune model" in e for e in semantic_errors({**config, "search": {"mode": "greedy"}}))
