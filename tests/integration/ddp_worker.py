"""Masked SFT of a tiny model under DDP (run by tests/test_ddp.py with torchrun, 2 CPU processes)."""

from __future__ import annotations

import sys

import torch
from accelerate import Accelerator

from cofitune.data.sft import tokenize_examples
from cofitune.fine import masking
from cofitune.infra import io
from cofitune.models import regions
from cofitune.models.modeling import build_tiny_model
from cofitune.training.loop import TrainSettings, train
from tests.conftest import make_examples


def run(out_file: str, micro_batch_size: int, accelerator: Accelerator) -> None:
    model, tokenizer = build_tiny_model("tiny-llama", seed=0)
    rows, _ = tokenize_examples(tokenizer, make_examples(), max_length=64)
    names = regions.select_parameters(model, (0.0, 1.0), "mha+ffn")
    regions.freeze_all_but(model, names)
    generator = torch.Generator().manual_seed(5)
    layers = len(regions.decoder_layers(model))
    imp = {"head": torch.rand(layers, 4, generator=generator), "intermediate": torch.rand(layers, 128, generator=generator),
           "output": torch.rand(layers, 64, generator=generator)}
    mask = masking.SoftMask(model, masking.row_scales(model, imp, names, masking.PARTS))
    settings = TrainSettings(learning_rate=1e-3, max_steps=3, micro_batch_size=micro_batch_size)
    train(model, rows, settings, accelerator, pad_id=tokenizer.pad_token_id, grad_transform=mask)
    if accelerator.is_main_process:
        io.save_tensors(out_file, dict(model.named_parameters()))


if __name__ == "__main__":
    accelerator = Accelerator(cpu=True)
    assert accelerator.num_processes == 2, accelerator.state
    run(sys.argv[1], micro_batch_size=4, accelerator=accelerator)  # 2 processes x 4 = the global batch of 8
