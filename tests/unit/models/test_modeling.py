"""Loading base models: built-in tiny models and local folders."""

from __future__ import annotations

import pytest
import torch

from cofitune.models.modeling import ModelSource, build_tiny_model, load_source


def test_builtin_models_are_deterministic_for_a_seed():
    a, _ = build_tiny_model("tiny-llama", seed=3)
    b, _ = build_tiny_model("tiny-llama", seed=3)
    c, _ = build_tiny_model("tiny-llama", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_missing_package_and_folder_are_reported():
    with pytest.raises(FileNotFoundError, match="package 'no-such-package-xyz' is not installed"):
        ModelSource(name_or_path="m", from_package="no-such-package-xyz").location()


def test_local_folder_loads_without_remote_code(tmp_path):
    model, tokenizer = build_tiny_model("tiny-gpt2")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_source(ModelSource(name_or_path=str(tmp_path)))
    assert loaded.config.model_type == "gpt2"
