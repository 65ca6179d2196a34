"""Shared fixtures: tiny randomly initialised models and small SFT data, all offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from cofitune.data import Example, tokenize_examples
from cofitune.modeling import build_tiny_model


@pytest.fixture
def tiny_llama():
    return build_tiny_model("tiny-llama", seed=0)


@pytest.fixture
def tiny_gpt2():
    return build_tiny_model("tiny-gpt2", seed=0)


@pytest.fixture
def tiny_neox():
    return build_tiny_model("tiny-gpt-neox", seed=0)


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
