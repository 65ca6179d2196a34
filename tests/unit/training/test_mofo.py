"""MoFO: the step changes exactly the top-momentum entries of each tensor, fraction 1.0 is AdamW,
and the baseline trains like full SFT with that optimizer. (Under FSDP2 the choice is made on the
whole tensor: tests/integration/test_fsdp.py.)"""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from cofitune.data.sft import tokenize_examples
from cofitune.methods.candidates import candidate_from_spec
from cofitune.methods.recipes import baseline_specs
from cofitune.training.loop import TrainSettings, build_optimizer, train
from cofitune.training.mofo import DEFAULT_FRACTION, entries_to_update, momentum_filter
from cofitune.training.optim import ScaledAdamW as MoFO
from tests.conftest import make_examples

BETAS, EPS, LR, DECAY = (0.9, 0.95), 1e-8, 1e-2, 0.1


def _params_with_grads(seed: int, shapes=((16, 8), (8,), (3, 5, 4))) -> tuple[list[torch.nn.Parameter], list[list[torch.Tensor]]]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=generator)) for s in shapes]
    grads = [[torch.randn(s, generator=generator) for s in shapes] for _ in range(4)]
    return params, grads


def _run(optimizer_class, params, grads, **kwargs) -> list[list[torch.Tensor]]:
    """Values after each step, for grads given step by step."""
    optimizer = optimizer_class([{"params": params[:1], "weight_decay": DECAY}, {"params": params[1:], "weight_decay": 0.0}],
                                lr=LR, betas=BETAS, eps=EPS, **kwargs)
    history = []
    for step_grads in grads:
        for param, grad in zip(params, step_grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()
        history.append([p.detach().clone() for p in params])
    return history


def test_fraction_one_is_adamw_bit_for_bit():
    params, grads = _params_with_grads(0)
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    mofo = _run(MoFO, params, grads, fraction=1.0)
    adamw = _run(torch.optim.AdamW, reference, grads, foreach=False)
    for ours, theirs in zip(mofo, adamw, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("fraction", [0.05, 0.15, 0.5])
def test_each_step_changes_exactly_the_entries_of_largest_momentum(fraction):
    params, grads = _params_with_grads(1)
    optimizer = MoFO([{"params": params, "weight_decay": DECAY}], lr=LR, betas=BETAS, eps=EPS, fraction=fraction)
    momentum = [torch.zeros_like(p) for p in params]
    for step_grads in grads:
        before = [p.detach().clone() for p in params]
        for param, grad, m in zip(params, step_grads, momentum, strict=True):
            param.grad = grad.clone()
            m.mul_(BETAS[0]).add_(grad, alpha=1 - BETAS[0])  # an independent momentum
        optimizer.step()
        for param, old, m in zip(params, before, momentum, strict=True):
            k = entries_to_update(m.numel(), fraction)
            top = torch.zeros(m.numel(), dtype=torch.bool)
            top[m.abs().flatten().argsort(descending=True)[:k]] = True
            changed = (param.detach() != old).flatten()
            assert torch.equal(changed, top), f"{int(changed.sum())} entries changed, {k} expected"


def test_the_moments_of_filtered_entries_keep_accumulating():
    """Only the step is filtered: every entry's moments follow AdamW's, as in the paper."""
    params, grads = _params_with_grads(2, shapes=((10, 10),))
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    mofo = MoFO(params, lr=LR, betas=BETAS, eps=EPS, fraction=0.1)
    adamw = torch.optim.AdamW(reference, lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0, foreach=False)
    for step_grads in grads:
        for optimizer, group in ((mofo, params), (adamw, reference)):
            group[0].grad = step_grads[0].clone()
            optimizer.step()
    for key in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(mofo.state[params[0]][key], adamw.state[reference[0]][key], rtol=0, atol=0)


def test_the_filter_counts_ties_and_tiny_tensors_exactly():
    assert entries_to_update(1, 0.15) == 1 and entries_to_update(100, 0.15) == 15 and entries_to_update(7, 1.0) == 7
    tied = momentum_filter(torch.zeros(40), 0.25)
    assert int(tied.sum()) == 10
    assert torch.equal(momentum_filter(torch.tensor([0.1, -3.0, 2.0, 0.5]), 0.5), torch.tensor([False, True, True, False]))
    with pytest.raises(ValueError, match="fraction"):
        MoFO([torch.nn.Parameter(torch.zeros(2))], fraction=0.0)


def test_the_baseline_is_full_sft_with_the_filtered_optimizer(tiny_llama):
    model, _ = tiny_llama
    assert baseline_specs({"full_sft": False, "v_softmask": False, "mofo": {"enabled": True}}) == [{"method": "mofo"}]
    candidate = candidate_from_spec({"method": "mofo"})
    assert candidate.id == f"mofo_{DEFAULT_FRACTION:g}" and candidate.trains
    assert candidate.recipe.update_fraction(candidate) == DEFAULT_FRACTION
    full_sft = candidate_from_spec({"layers": "all", "modules": "all"})
    assert full_sft.recipe.update_fraction(full_sft) is None
    assert candidate.trainable_names(model) == full_sft.trainable_names(model)  # every tensor full SFT trains
    assert candidate.describe()["layer_range"] == "all" and candidate.describe()["module_set"] == "all"
    settings = TrainSettings(update_fraction=0.2)
    assert isinstance(build_optimizer(model, settings), MoFO) and isinstance(build_optimizer(model, TrainSettings()), torch.optim.AdamW)
    assert TrainSettings.from_config({"update_fraction": 0.5, "learning_rate": 1e-3}, seed=1).update_fraction is None


def test_training_with_mofo_moves_a_fraction_of_each_tensor_per_step(tiny_llama):
    """Over two steps at most twice the fraction of any tensor's entries move, and the loss goes down."""
    model, tokenizer = tiny_llama
    rows, _ = tokenize_examples(tokenizer, make_examples(16), max_length=48)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    settings = TrainSettings(learning_rate=1e-2, max_steps=2, micro_batch_size=8, warmup_ratio=0.0, update_fraction=0.1)
    result = train(model, rows, settings, Accelerator(cpu=True), pad_id=tokenizer.pad_token_id)
    for name, param in model.named_parameters():
        moved = int((param.detach() != before[name]).sum())
        assert 0 < moved <= 2 * entries_to_update(param.numel(), 0.1), name
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_mofo_is_refused_with_cpu_offload():
    from cofitune.configuration.checks import semantic_errors

    config = {"baselines": {"full_sft": False, "v_softmask": False, "mofo": {"enabled": True}}, "training": {"cpu_offload": True}}
    assert any("cpu_offload" in e for e in semantic_errors(config))
    assert not any("cpu_offload" in e for e in semantic_errors({**config, "training": {}}))
