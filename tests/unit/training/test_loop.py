"""The training loop: schedule, accumulation equivalence, resume after a kill, NaN handling."""

from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest
import torch
from accelerate import Accelerator

from cofitune.models import regions
from cofitune.training.loop import (
    NonFiniteLossError,
    TrainSettings,
    build_optimizer,
    learning_rate_at,
    micro_batches,
    step_example_indices,
    train,
)

SETTINGS = TrainSettings(learning_rate=1e-3, max_steps=6, micro_batch_size=4, save_every_steps=2, log_every_steps=1)


def _prepare(model, module_set="ffn", layer_range=(0.25, 0.5)):
    model = copy.deepcopy(model)
    regions.freeze_all_but(model, regions.select_parameters(model, layer_range, module_set))
    return model


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_cosine_schedule_warms_up_then_decays_to_zero():
    s = TrainSettings(learning_rate=1.0, warmup_ratio=0.1)
    lrs = [learning_rate_at(i, 100, s) for i in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] < 1e-3


def test_data_order_is_a_pure_function_of_seed_and_step():
    a = [step_example_indices(s, 20, 4, seed=7) for s in range(10)]
    b = [step_example_indices(s, 20, 4, seed=7) for s in range(10)]
    assert a == b
    assert sorted(i for s in a[:5] for i in s) == list(range(20))  # one epoch covers every example once
    assert a != [step_example_indices(s, 20, 4, seed=8) for s in range(10)]


def test_frozen_tensors_are_bitwise_unchanged_and_have_no_optimizer_state(tiny_llama, tiny_rows):
    model = _prepare(tiny_llama[0])
    before = _params(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    train(model, tiny_rows, SETTINGS, Accelerator(cpu=True), pad_id=0)
    after = _params(model)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == (name in trainable), name
    optimizer = build_optimizer(model, SETTINGS)
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
        id(p) for n, p in model.named_parameters() if n in trainable
    }


def test_gradient_accumulation_matches_one_large_batch(tiny_llama, tiny_rows):
    big = TrainSettings(learning_rate=1e-3, max_steps=2, micro_batch_size=8, gradient_accumulation_steps=1)
    small = TrainSettings(learning_rate=1e-3, max_steps=2, micro_batch_size=2, gradient_accumulation_steps=4)
    a, b = _prepare(tiny_llama[0]), _prepare(tiny_llama[0])
    train(a, tiny_rows, big, Accelerator(cpu=True), pad_id=0)
    train(b, tiny_rows, small, Accelerator(cpu=True), pad_id=0)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)


def _update_mask(model) -> dict:
    """The soft-mask's step scales (update mode) for a model's trained tensors, from fixed importances."""
    from cofitune.fine import importance, masking

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(5)
    imp = {t: torch.rand(torch.stack(g).shape, generator=generator) for t, g in importance.make_gates(model).items()}
    return masking.SoftMask(model, masking.row_scales(model, imp, names, masking.PARTS), "update").step_scales()


def test_micro_batches_are_cut_by_length_where_the_padding_saved_pays():
    mixed = [80, 205, 81, 200, 79, 210, 90, 199]
    chunks = micro_batches(mixed, 8, 256)
    assert sorted(i for c in chunks for i in c) == list(range(8))  # every row once
    assert [sorted(mixed[i] for i in c) for c in chunks] == [[79, 80, 81, 90], [199, 200, 205, 210]]
    assert micro_batches(mixed, 8, 10_000) == [sorted(range(8), key=mixed.__getitem__)]  # a split must save more
    assert micro_batches([100] * 8, 8, 1) == [list(range(8))]  # nothing to save
    assert all(len(c) <= 3 for c in micro_batches(mixed, 3, 256))  # never more rows than micro_batch_size
    assert micro_batches(mixed, 3, None) == [[0, 1, 2], [3, 4, 5], [6, 7]]  # off: data order


def test_length_split_micro_batches_give_the_update_of_one_batch(tiny_llama, tiny_rows):
    lengths = {len(r["input_ids"]) for r in tiny_rows}
    assert len(lengths) > 2, "the fixture must mix lengths for this test to split"
    whole = TrainSettings(learning_rate=1e-3, max_steps=2, micro_batch_size=8, length_split_tokens=None)
    split = dataclasses.replace(whole, length_split_tokens=1)
    assert len(micro_batches([len(r["input_ids"]) for r in tiny_rows[:8]], 8, 1)) > 1
    a, b = _prepare(tiny_llama[0]), _prepare(tiny_llama[0])
    train(a, tiny_rows, whole, Accelerator(cpu=True), pad_id=0)
    train(b, tiny_rows, split, Accelerator(cpu=True), pad_id=0)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)


def test_plain_adamw_is_torchs_fused_kernel_on_cpu(tiny_llama):
    optimizer = build_optimizer(_prepare(tiny_llama[0]), SETTINGS)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["fused"]


@pytest.mark.parametrize(("update_fraction", "masked"), [(None, False), (0.15, False), (None, True), (0.15, True)],
                         ids=["adamw", "mofo", "softmask-update", "mofo+softmask-update"])
def test_resume_after_a_kill_reaches_the_same_weights(tiny_llama, tiny_rows, tmp_path, update_fraction, masked):
    settings = dataclasses.replace(SETTINGS, update_fraction=update_fraction)  # ScaledAdamW's state is checkpointed like AdamW's
    reference = _prepare(tiny_llama[0], module_set="mha+ffn")
    full = train(reference, tiny_rows, settings, Accelerator(cpu=True), pad_id=0, step_scales=_update_mask(reference) if masked else None)

    class Killed(Exception):
        pass

    def kill_after_three(step, _record):
        if step == 3:
            raise Killed

    model = _prepare(tiny_llama[0], module_set="mha+ffn")
    with pytest.raises(Killed):
        train(model, tiny_rows, settings, Accelerator(cpu=True), pad_id=0, checkpoint_dir=tmp_path, fingerprint="x", on_step=kill_after_three,
              step_scales=_update_mask(model) if masked else None)
    assert (tmp_path / "state.json").is_file()
    resumed_model = _prepare(tiny_llama[0], module_set="mha+ffn")  # a fresh process starts from the base
    resumed = train(resumed_model, tiny_rows, settings, Accelerator(cpu=True), pad_id=0, checkpoint_dir=tmp_path, fingerprint="x",
                    step_scales=_update_mask(resumed_model) if masked else None)
    assert resumed.resumed_from_step == 2
    for (name, pa), (_, pb) in zip(reference.named_parameters(), resumed_model.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]


def test_a_checkpoint_from_other_settings_is_not_resumed(tiny_llama, tiny_rows, tmp_path):
    model = _prepare(tiny_llama[0])
    train(model, tiny_rows, SETTINGS, Accelerator(cpu=True), pad_id=0, checkpoint_dir=tmp_path, fingerprint="old")
    again = train(_prepare(tiny_llama[0]), tiny_rows, SETTINGS, Accelerator(cpu=True), pad_id=0, checkpoint_dir=tmp_path, fingerprint="new")
    assert again.resumed_from_step == 0


def test_non_finite_loss_stops_with_a_clear_error(tiny_llama, tiny_rows):
    model = _prepare(tiny_llama[0])
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="optimizer step 1"):
        train(model, tiny_rows, SETTINGS, Accelerator(cpu=True), pad_id=0)


def test_non_finite_gradient_stops_before_the_weights_change(tiny_llama, tiny_rows):
    model = _prepare(tiny_llama[0])
    before = _params(model)
    trainable = next(p for p in model.parameters() if p.requires_grad)
    trainable.register_hook(lambda grad: torch.full_like(grad, float("nan")))
    with pytest.raises(NonFiniteLossError, match="gradient norm is nan at optimizer step 1"):
        train(model, tiny_rows, SETTINGS, Accelerator(cpu=True), pad_id=0)
    for name, value in _params(model).items():
        assert torch.equal(value, before[name]), name


def test_too_little_data_for_one_batch_is_reported(tiny_llama, tiny_rows):
    settings = TrainSettings(micro_batch_size=64, epochs=1)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(_prepare(tiny_llama[0]), tiny_rows, settings, Accelerator(cpu=True), pad_id=0)


def test_a_corrupted_checkpoint_is_ignored_and_training_restarts_to_the_same_weights(tiny_llama, tiny_rows, tmp_path):
    model, tokenizer = tiny_llama
    regions.freeze_all_but(model, regions.select_parameters(model, (0.0, 0.5), "ffn"))
    start = copy.deepcopy(model)
    settings = TrainSettings(learning_rate=1e-3, max_steps=4, micro_batch_size=4, save_every_steps=2)
    train(model, tiny_rows, settings, Accelerator(cpu=True), tokenizer.pad_token_id, checkpoint_dir=tmp_path / "ckpt", fingerprint="f")
    state = tmp_path / "ckpt" / "state.safetensors"
    state.write_bytes(state.read_bytes()[:100])  # as a full disk or a killed copy would leave it
    again = copy.deepcopy(start)
    train(again, tiny_rows, settings, Accelerator(cpu=True), tokenizer.pad_token_id, checkpoint_dir=tmp_path / "ckpt", fingerprint="f")
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters(), strict=True):
        assert torch.equal(a, b), name
