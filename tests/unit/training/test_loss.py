"""The SFT loss: target positions only, and a cross-entropy in the logits' own buffer that equals
`F.cross_entropy` bit for bit (loss and gradient), on any vocabulary size, and that never overwrites
memory the graph still needs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cofitune.data.sft import IGNORE_INDEX, Example, collate, tokenize_examples
from cofitune.training import loss as loss_module
from cofitune.training.loss import accepts_logits_to_keep, may_overwrite, summed_cross_entropy, token_loss_sum


def _reference(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = logits.detach().clone().requires_grad_()
    loss = F.cross_entropy(leaf, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    (loss * scale).backward()
    return loss.detach(), leaf.grad


@pytest.mark.parametrize(("rows", "vocab", "block"), [(1, 7, None), (37, 7, 16), (37, 1000, None), (203, 49152, None), (64, 50257, None)])
def test_the_summed_cross_entropy_equals_torchs_bit_for_bit(rows, vocab, block, monkeypatch):
    if block is not None:  # blocks of two rows: the last one partial
        monkeypatch.setitem(loss_module.CHUNK_ELEMENTS, "cpu", block)
    generator = torch.Generator().manual_seed(rows)
    base = torch.randn(rows, vocab, generator=generator) * 3
    targets = torch.randint(0, vocab, (rows,), generator=generator)
    targets[::3] = IGNORE_INDEX
    want_loss, want_grad = _reference(base, targets, scale=0.0123)
    leaf = base.clone().requires_grad_()
    logits = leaf * 1.0  # made by an operation that saves nothing of its output: overwritten in place
    assert may_overwrite(logits)
    loss = summed_cross_entropy(logits, targets)
    (loss * 0.0123).backward()
    assert torch.equal(loss.detach(), want_loss)
    assert torch.equal(leaf.grad, want_grad)
    assert not torch.equal(logits.detach(), base)  # the buffer did hold the log-probabilities


def test_logits_the_graph_saved_are_copied_not_overwritten():
    generator = torch.Generator().manual_seed(0)
    leaf = torch.randn(12, 50, generator=generator).requires_grad_()
    targets = torch.randint(0, 50, (12,), generator=generator)
    logits = torch.tanh(leaf)  # tanh's backward reads its own output
    assert not may_overwrite(logits)
    assert not may_overwrite(logits.view(12, 50))  # nor through a view of it
    assert not may_overwrite(leaf)  # a leaf belongs to the caller
    before = logits.detach().clone()
    summed_cross_entropy(logits.view(12, 50), targets).backward()
    assert torch.equal(logits.detach(), before)
    want = torch.autograd.grad(F.cross_entropy(torch.tanh(leaf), targets, reduction="sum"), leaf)[0]
    assert torch.equal(leaf.grad, want)


def test_only_2d_float32_logits_are_taken():
    with pytest.raises(ValueError, match="2-D float32"):
        summed_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D float32"):
        summed_cross_entropy(torch.zeros(2, 4, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2", "tiny_neox"])
def test_the_loss_equals_torchs_on_every_logit_bit_for_bit(family, request):
    """Target positions only and in place: the loss and every parameter's gradient are those of
    `F.cross_entropy` over the logits of every position."""
    model, tokenizer = request.getfixturevalue(family)
    examples = [Example(({"role": "user", "content": f"Name {i} {'x ' * i}"},), str(i), f"mem:{i}") for i in range(6)]
    rows, _ = tokenize_examples(tokenizer, examples, max_length=64)
    batch = collate(rows, tokenizer.pad_token_id)
    assert accepts_logits_to_keep(model)
    restricted = token_loss_sum(model, batch)
    restricted.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    targets = batch["labels"][:, 1:].flatten()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    full = F.cross_entropy(logits.flatten(0, 1), targets, ignore_index=IGNORE_INDEX, reduction="sum")
    full.backward()
    torch.testing.assert_close(restricted, full, rtol=1e-5, atol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2", "tiny_neox"])
def test_the_model_path_overwrites_its_logits_and_trains_exactly_as_before(family, request):
    """The loss of the loop's own forward (target positions only) gives every parameter the gradient
    that `F.cross_entropy` gives on the same logits, bit for bit: a run's weights do not change."""
    model, tokenizer = request.getfixturevalue(family)
    examples = [Example(({"role": "user", "content": f"Say {i}"},), f"{i} {'y ' * i}", f"mem:{i}") for i in range(6)]
    batch = collate(tokenize_examples(tokenizer, examples, max_length=64)[0], tokenizer.pad_token_id)
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)

    def logits():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
        return out.flatten(0, 1).float()

    (F.cross_entropy(logits(), targets[:, keep].flatten(), ignore_index=IGNORE_INDEX, reduction="sum") * 0.37).backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    assert may_overwrite(logits())
    (token_loss_sum(model, batch) * 0.37).backward()
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, want[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_in_place_kernels_equal_torchs_on_cuda_before_they_are_used_there(monkeypatch):
    """What IN_PLACE_DEVICES waits for: pass this on a GPU (`bash bench/gpu.sh tests`), then add "cuda"."""
    monkeypatch.setattr(loss_module, "IN_PLACE_DEVICES", frozenset({"cpu", "cuda"}))
    generator = torch.Generator(device="cuda").manual_seed(0)
    base = torch.randn(2053, 50257, generator=generator, device="cuda") * 3
    targets = torch.randint(0, 50257, (2053,), generator=generator, device="cuda")
    targets[::3] = IGNORE_INDEX
    want_loss, want_grad = _reference(base, targets, scale=0.0123)
    leaf = base.clone().requires_grad_()
    loss = summed_cross_entropy(leaf * 1.0, targets)
    (loss * 0.0123).backward()
    assert torch.equal(loss.detach(), want_loss)
    assert torch.equal(leaf.grad, want_grad)


def test_off_the_proven_devices_the_loss_is_torchs_own(monkeypatch):
    monkeypatch.setattr(loss_module, "IN_PLACE_DEVICES", frozenset())
    logits = (torch.randn(5, 11) * 1.0).requires_grad_()
    before = logits.detach().clone()
    targets = torch.tensor([1, 2, IGNORE_INDEX, 4, 5])
    loss = summed_cross_entropy(logits, targets)
    assert loss.grad_fn.name() != "_SummedCrossEntropyBackward"
    assert torch.equal(loss, F.cross_entropy(before, targets, ignore_index=IGNORE_INDEX, reduction="sum"))
