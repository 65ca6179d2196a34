"""The memory model: its static terms equal the bytes of the real tensors of a training step."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from cofitune.cli import main
from cofitune.infra.memory import FFN_Q2, FULL_SFT, SHAPES, ModelShape, plan
from cofitune.models import regions
from cofitune.training.loop import TrainSettings, train


def _shape(model) -> ModelShape:
    c = model.config
    return ModelShape("tiny", c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads,
                      c.num_key_value_heads, c.vocab_size, tied=c.tie_word_embeddings)


@pytest.mark.parametrize("trained", [FULL_SFT, FFN_Q2], ids=["full", "ffn-q2"])
def test_static_terms_equal_the_tensors_of_a_real_step(tiny_llama, tiny_rows, trained, monkeypatch):
    model, tokenizer = tiny_llama
    shape = _shape(model)
    assert shape.params() == regions.count_parameters(model)
    full = trained is FULL_SFT
    regions.freeze_all_but(model, regions.select_parameters(model, None if full else trained.layer_range, "all" if full else "ffn"))
    seen = {}

    def count_gradients(m):  # the loop's hook: after accumulation, before the step
        seen["gradients"] = sum(p.grad.numel() * p.grad.element_size() for p in m.parameters() if p.grad is not None)

    def keep_optimizer(init):
        def wrapped(self, *args, **kwargs):
            init(self, *args, **kwargs)
            seen["optimizer"] = self
        return wrapped

    monkeypatch.setattr(torch.optim.AdamW, "__init__", keep_optimizer(torch.optim.AdamW.__init__))
    train(model, tiny_rows, TrainSettings(max_steps=1, micro_batch_size=4), Accelerator(cpu=True), tokenizer.pad_token_id,
          grad_transform=count_gradients)
    moments = sum(v.numel() * v.element_size() for state in seen["optimizer"].state.values() for v in state.values() if v.ndim > 0)
    expected = plan(shape, trained, precision="fp32")
    assert expected.parameters == sum(p.numel() * p.element_size() for p in model.parameters())
    assert expected.gradients == seen["gradients"] and expected.optimizer == moments


def test_sharding_and_offload_divide_and_move_the_static_terms():
    shape = SHAPES["llama-8b"]
    one, eight = plan(shape, FULL_SFT, devices=1), plan(shape, FULL_SFT, devices=8, sharded=True)
    assert eight.optimizer == pytest.approx(one.optimizer / 8) and eight.gradients == pytest.approx(one.gradients / 8)
    assert one.optimizer == 8 * shape.params() and 15e9 < shape.params() * 2 < 17e9  # ~8.0e9 parameters
    offloaded = plan(shape, FULL_SFT, offload=True)
    assert offloaded.optimizer == 0 and offloaded.host == pytest.approx(4 * shape.params() + one.gradients + one.optimizer)
    assert plan(shape, FFN_Q2).activations < one.activations  # nothing stored below layer 8


def test_plan_memory_prints_the_table(capsys):
    assert main(["plan-memory", "--shapes", "llama-8b", "--devices", "1", "8"]) == 0
    out = capsys.readouterr().out
    assert "| Llama-3.1-8B | full SFT (100.0%) | 1 |" in out and out.count("\n") == 2 + 4
