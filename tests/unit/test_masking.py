"""Fine level, applied: gradient soft-masking, proven row by row."""

from __future__ import annotations

import copy

import pytest
import torch
from accelerate import Accelerator

from cofitune import importance, masking, regions
from cofitune.train import TrainSettings, token_loss_sum, train
from tests.conftest import random_batches

FAMILIES = ["tiny_llama", "tiny_gpt2", "tiny_neox"]


def _random_importance(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    gates = importance.make_gates(model)
    return {t: torch.rand(torch.stack(gates[t]).shape, generator=generator) for t in importance.UNIT_TYPES}


def _expected_factor(model, name, index, imp):
    """Independent, unit-by-unit statement of which importance scales output unit `index`."""
    layer, roles, _ = regions.locate_parameter(model, name)
    family = regions.family_of(model)
    heads = model.config.num_attention_heads
    hidden = model.config.hidden_size
    head_dim = hidden // heads
    if "up" in roles or "gate" in roles:
        return 1 - imp["intermediate"][layer, index]
    if "down" in roles:
        return 1 - imp["output"][layer, index]
    if family.qkv_layout == "blocks":
        return 1 - imp["head"][layer, (index % hidden) // head_dim]
    if family.qkv_layout == "per_head":
        return 1 - imp["head"][layer, index // (3 * head_dim)]
    if roles == ("q",):
        return 1 - imp["head"][layer, index // head_dim]
    kv_heads = model.config.num_key_value_heads
    kv = index // head_dim
    sharing = [h for h in range(heads) if h * kv_heads // heads == kv]
    return 1 - max(imp["head"][layer, h] for h in sharing)


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_gradient_is_one_minus_importance_times_gradient_row_by_row(family, request):
    model, tokenizer = request.getfixturevalue(family)
    names = regions.select_parameters(model, (0.0, 1.0), "mha+ffn", {"mha+ffn": ["q", "k", "v", "gate", "up", "down"]} if family == "tiny_llama" else None)
    regions.freeze_all_but(model, names)
    imp = _random_importance(model)
    batch = random_batches(tokenizer, n=1)[0]
    token_loss_sum(model, batch).backward()
    unmasked = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    mask = masking.SoftMask(model, masking.row_scales(model, imp, names, masking.PARTS))
    assert len(mask) == len(names)
    mask(model)
    transposed = regions.family_of(model).transposed
    checked_roles = set()
    for name, param in model.named_parameters():
        if name not in names:
            continue
        checked_roles.update(regions.locate_parameter(model, name)[1])
        rows = unmasked[name].T if transposed and param.ndim == 2 else unmasked[name]
        got = param.grad.T if transposed and param.ndim == 2 else param.grad
        for index in range(rows.shape[0]):
            factor = _expected_factor(model, name, index, imp)
            torch.testing.assert_close(got[index], rows[index] * factor, msg=f"{name} unit {index}")
    expected_roles = {"q", "k", "v", "up", "down"} | ({"gate"} if family == "tiny_llama" else set())
    assert checked_roles == expected_roles
    if family != "tiny_llama":
        assert any(n.endswith(".bias") for n in names)  # biases are covered by GPT-2 and GPT-NeoX


def test_grouped_query_key_value_heads_take_the_max_of_their_query_heads(tiny_llama):
    model, _ = tiny_llama
    head = torch.tensor([0.1, 0.9, 0.3, 0.2])  # 4 query heads, 2 kv heads: {0,1} -> 0, {2,3} -> 1
    scale = masking.head_row_scale(model, ("k",), head, out=32)
    assert torch.allclose(scale, torch.tensor([0.1] * 16 + [0.7] * 16))


def test_default_parts_mask_only_the_ffn(tiny_llama):
    model, _ = tiny_llama
    names = regions.select_parameters(model, (0.0, 1.0), "mha+ffn")
    scales = masking.row_scales(model, _random_importance(model), names)
    assert {regions.locate_parameter(model, n)[1] for n in scales} == {("up",), ("down",)}
    with pytest.raises(ValueError, match="unknown soft-mask parts"):
        masking.row_scales(model, _random_importance(model), names, ["ffn"])


def test_accumulation_with_the_mask_equals_one_large_batch(tiny_llama, tiny_rows):
    base, _ = tiny_llama
    imp = _random_importance(base)
    results = []
    for micro, accumulation in ((8, 1), (2, 4)):
        model = copy.deepcopy(base)
        names = regions.select_parameters(model, (0.0, 1.0), "mha+ffn")
        regions.freeze_all_but(model, names)
        mask = masking.SoftMask(model, masking.row_scales(model, imp, names, masking.PARTS))
        # A large AdamW eps keeps updates proportional to gradients: with the default 1e-8, Adam turns
        # the rounding noise of mathematically-zero k_proj gradients into lr-sized updates, which made
        # this comparison fail on a 16-core CPU whose reduction order differs from ours.
        settings = TrainSettings(learning_rate=1e-3, max_steps=2, micro_batch_size=micro, gradient_accumulation_steps=accumulation,
                                 adam_eps=1e-4)
        train(model, tiny_rows, settings, Accelerator(cpu=True), pad_id=0, grad_transform=mask)
        results.append(dict(model.named_parameters()))
    for name in results[0]:
        torch.testing.assert_close(results[0][name], results[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_fully_important_row_never_moves(tiny_llama, tiny_rows):
    model, _ = tiny_llama
    names = regions.select_parameters(model, (0.0, 1.0), "ffn")
    regions.freeze_all_but(model, names)
    imp = {t: torch.zeros_like(v) for t, v in _random_importance(model).items()}
    imp["intermediate"][:, :5] = 1.0  # rows 0-4 of every up projection
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    settings = TrainSettings(learning_rate=1e-2, max_steps=3, micro_batch_size=8, weight_decay=0.0)
    train(model, tiny_rows, settings, Accelerator(cpu=True), pad_id=0, grad_transform=masking.SoftMask(model, masking.row_scales(model, imp, names)))
    up = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(model.get_parameter(up)[:5], before[up][:5])
    assert not torch.equal(model.get_parameter(up)[5:], before[up][5:])


def test_auto_parts_follow_the_trained_modules(tiny_llama):
    model, _ = tiny_llama
    ffn = regions.select_parameters(model, (0.0, 0.5), "ffn")
    mha = regions.select_parameters(model, (0.0, 0.5), "mha")
    assert masking.resolve_parts("auto", model, ffn) == masking.DEFAULT_PARTS
    assert masking.resolve_parts("auto", model, mha) == ("attention",)
    assert masking.resolve_parts(["attention"], model, ffn) == ("attention",)
