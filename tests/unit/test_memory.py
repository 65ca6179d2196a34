"""The memory model: its static terms equal the bytes of the real tensors of a training step."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from cofitune import regions
from cofitune.cli import main
from cofitune.memory import FFN_Q2, FULL_SFT, SHAPES, ModelShape, plan
from cofitune.train import TrainSettings, train


def _shape(model) -> ModelShape:
    c = model.config
    return ModelShape("tiny", c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads,
                      c.num_key_value_heads, c.vocab_size, tied=c.tie_word_embeddings)


@pytest.mark.parametrize("trained", [FULL_SFT, FFN_Q2], ids=["full", "ffn-q2"])
def test_static_terms_equal_the_tensors_of_a_real_step(tiny_llama, tiny_rows, trained):
    model, tokenizer = tiny_llama
    shape = _shape(model)
    assert shape.params() == regions.count_parameters(model)
    names = regions.select_parameters(model, None if trained is FULL_SFT else trained.layer_range,
                                      "all" if trained is FULL_SFT else "ffn")
    regions.freeze_all_but(model, names)
    captured = {}

    def capture(step, _record):  # after the step: gradients were freed, moments exist
        captured["optimizer"] = sum(v.numel() * v.element_size() for s in optimizer_state(model) for v in s.values() if v.ndim > 0)

    def optimizer_state(m):
        return [captured["opt"].state[p] for p in m.parameters() if p in captured["opt"].state]

    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        captured["opt"] = self
        captured["gradients"] = sum(p.grad.numel() * p.grad.element_size() for g in self.param_groups for p in g["params"])
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = step
    try:
        train(model, tiny_rows, TrainSettings(max_steps=1, micro_batch_size=4), Accelerator(cpu=True), tokenizer.pad_token_id,
              on_step=capture)
    finally:
        torch.optim.AdamW.step = original
    expected = plan(shape, trained, precision="fp32")
    assert expected.parameters == sum(p.numel() * p.element_size() for p in model.parameters())
    assert expected.gradients == captured["gradients"] and expected.optimizer == captured["optimizer"]


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
