"""Shared fixtures: tiny randomly initialised models and small SFT data, all offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from cofitune.data.sft import Example, collate, tokenize_examples
from cofitune.models.modeling import build_tiny_model


@pytest.fixture
def tiny_llama():
    return build_tiny_model("tiny-llama", seed=0)


@pytest.fixture
def tiny_gpt2():
    return build_tiny_model("tiny-gpt2", seed=0)


@pytest.fixture
def tiny_neox():
    return build_tiny_model("tiny-gpt-neox", seed=0)


def train_outputs(folder):
    """A training's three outputs in the workflow's layout (results/train/<id>/), as train_candidate's keywords."""
    return {"trained_out": folder / "trained.safetensors", "metrics_out": folder / "train_metrics.json", "checkpoint_dir": folder / "checkpoint"}


def make_examples(n: int = 32) -> list[Example]:
    return [
        Example(({"role": "user", "content": f"What is {i} plus {i + 1}?"},), str(2 * i + 1), f"mem:{i}")
        for i in range(n)
    ]


@pytest.fixture
def tiny_rows(tiny_llama):
    _, tokenizer = tiny_llama
    rows, _ = tokenize_examples(tokenizer, make_examples(), max_length=64)
    return rows


def random_batches(tokenizer, n=4, size=4, seed=0):
    """Batches of random token rows of random lengths (padded), deterministic for a seed."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n * size):
        length = int(torch.randint(5, 20, (1,), generator=generator))
        ids = torch.randint(3, len(tokenizer), (length,), generator=generator).tolist()
        rows.append({"input_ids": ids, "labels": ids})
    return [collate(rows[i : i + size], tokenizer.pad_token_id) for i in range(0, len(rows), size)]



def prepare_tiny_run(root):
    """A prepared tiny Llama and 16 tokenized examples under `root` (model/, data/): a training stage's inputs."""
    from cofitune.infra import io
    from cofitune.models.modeling import load_prepared
    from cofitune.stages.model import prepare_model

    prepare_model({"name_or_path": "builtin:tiny-llama"}, root / "model", seed=0)
    _, tokenizer = load_prepared(root / "model")
    rows, _ = tokenize_examples(tokenizer, make_examples(16), max_length=64)
    io.write_dataset(root / "data", rows)
    return root
