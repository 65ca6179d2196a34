"""Fine level, estimation: the KL-of-two-noisy-passes importance of heads and neurons."""

from __future__ import annotations

import pytest
import torch

from cofitune.fine import importance
from cofitune.models import regions
from tests.conftest import random_batches

FAMILIES = ["tiny_llama", "tiny_gpt2", "tiny_neox"]


@pytest.mark.parametrize("family", FAMILIES)
def test_without_dropout_the_kl_is_exactly_zero_and_with_it_importance_is_not(family, request):
    model, tokenizer = request.getfixturevalue(family)
    for module in model.modules():  # GPT-2 has dropout of its own; estimation runs in train mode
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batches = random_batches(tokenizer)
    silent = importance.estimate(model, batches, importance.ImportanceSettings(dropout=0.0))
    assert all(torch.count_nonzero(v) == 0 for v in silent.values())
    torch.manual_seed(0)
    noisy = importance.estimate(model, batches, importance.ImportanceSettings(dropout=0.1))
    assert all(torch.count_nonzero(v) > 0 for v in noisy.values())
    layers = len(regions.decoder_layers(model))
    assert noisy["head"].shape == (layers, model.config.num_attention_heads)
    assert noisy["output"].shape == (layers, model.config.hidden_size)


def test_estimation_changes_no_weight_and_restores_requires_grad(tiny_llama):
    model, tokenizer = tiny_llama
    regions.freeze_all_but(model, regions.select_parameters(model, (0.0, 0.5), "ffn"))
    before = {n: (p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()}
    importance.estimate(model, random_batches(tokenizer), importance.ImportanceSettings(dropout=0.1))
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name][0]) and param.requires_grad == before[name][1], name
    assert not model.training


def test_a_fixed_seed_gives_identical_importance(tiny_llama):
    model, tokenizer = tiny_llama
    runs = []
    for _ in range(2):
        torch.manual_seed(1234)
        runs.append(importance.estimate(model, random_batches(tokenizer), importance.ImportanceSettings(dropout=0.05, accumulate="abs")))
    assert all(torch.equal(runs[0][t], runs[1][t]) for t in importance.UNIT_TYPES)
    assert all((runs[0][t] >= 0).all() for t in importance.UNIT_TYPES)  # abs accumulation


def test_padding_positions_do_not_enter_the_kl():
    z1, z2 = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    altered = z2.clone()
    altered[0, 3:] += 100.0  # what happens at padding must not matter
    assert importance.kl_loss(z1, z2, mask, 0.1) == importance.kl_loss(z1, altered, mask, 0.1)
    assert importance.kl_loss(z1, z1, mask, 0.1) == 0


def test_normalised_importance_lies_in_zero_one_per_layer():
    raw = torch.cat([torch.randn(3, 50) * 1e-6, torch.tensor([[1e9] + [0.0] * 49]), torch.zeros(1, 50)])
    normalised = importance.normalise(raw)
    assert ((normalised >= 0) & (normalised < 1)).all()
    assert torch.equal(normalised[-1], torch.zeros(50))  # a constant layer has no preference
    row = raw[0]
    assert torch.allclose(normalised[0], torch.tanh((row - row.mean()) / row.std()).abs())


def test_sources_combine_by_elementwise_max():
    a = {t: torch.tensor([[0.1, 0.8], [0.5, 0.2]]) for t in importance.UNIT_TYPES}
    b = {t: torch.tensor([[0.3, 0.1], [0.4, 0.9]]) for t in importance.UNIT_TYPES}
    combined = importance.combine([a, b])
    assert all(torch.equal(combined[t], torch.tensor([[0.3, 0.8], [0.5, 0.9]])) for t in importance.UNIT_TYPES)


def test_two_halves_pooled_by_tokens_equal_one_pass_over_all_the_data(tiny_llama):
    model, tokenizer = tiny_llama
    batches = [{**b, "seed": i} for i, b in enumerate(random_batches(tokenizer, n=4, size=3))]
    settings = importance.ImportanceSettings(dropout=0.1)
    whole = importance.estimate(model, batches, settings)
    halves = [(importance.estimate(model, half, settings), float(sum(b["attention_mask"].sum() for b in half)))
              for half in (batches[0::2], batches[1::2])]
    pooled = importance.pooled(halves)
    for unit_type in importance.UNIT_TYPES:
        assert torch.allclose(pooled[unit_type], whole[unit_type], rtol=1e-4, atol=1e-7), unit_type


def test_split_half_reliability_is_the_per_layer_rank_correlation():
    a = {t: torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]) for t in importance.UNIT_TYPES}
    b = {t: torch.tensor([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0]]) for t in importance.UNIT_TYPES}
    rho = importance.split_half_reliability(a, b)
    assert set(rho) == set(importance.UNIT_TYPES)
    assert rho["head"].tolist() == pytest.approx([1.0, -1.0])
