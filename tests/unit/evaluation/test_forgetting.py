"""The forgetting signal: KL(base || model) per token, and the rank correlation it is judged by."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from cofitune.evaluation.forgetting import mean_token_kl
from cofitune.infra.stats import spearman
from tests.conftest import random_batches


def test_an_unchanged_model_has_zero_kl_and_a_perturbed_one_positive(tiny_llama):
    model, tokenizer = tiny_llama
    batches = random_batches(tokenizer, n=2, size=3)
    kl, tokens = mean_token_kl(model, copy.deepcopy(model), batches)
    assert kl == pytest.approx(0.0, abs=1e-6) and tokens == sum(int(b["attention_mask"].sum()) for b in batches)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.model.layers[1].mlp.down_proj.weight.add_(0.5)
    assert mean_token_kl(model, changed, batches)[0] > 1e-3


def test_kl_equals_a_direct_computation_and_ignores_padding(tiny_llama):
    model, tokenizer = tiny_llama
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.lm_head.weight.mul_(1.5)
    batch = random_batches(tokenizer, n=1, size=2, seed=3)[0]
    kl, tokens = mean_token_kl(model, changed, [batch])
    expected, count = 0.0, 0
    for row in range(batch["input_ids"].shape[0]):
        length = int(batch["attention_mask"][row].sum())
        ids = batch["input_ids"][row : row + 1, :length]  # the row alone, without its padding
        with torch.no_grad():
            p = F.log_softmax(model(input_ids=ids).logits[0], dim=-1)
            q = F.log_softmax(changed(input_ids=ids).logits[0], dim=-1)
        expected += float((p.exp() * (p - q)).sum())
        count += length
    assert tokens == count and kl == pytest.approx(expected / count, rel=1e-4)


def test_spearman_on_known_rankings():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # ties: average ranks
    assert math.isnan(spearman([1, 2], [2, 1])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))
