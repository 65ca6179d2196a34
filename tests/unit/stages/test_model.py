"""Stage prepare_model and merge: safetensors folders that reload identically."""

from __future__ import annotations

import pytest
import torch

from cofitune.infra import io
from cofitune.models.modeling import build_tiny_model, load_prepared
from cofitune.stages import model as stages


def test_prepare_model_writes_safetensors_that_reload_identically(tmp_path):
    stages.prepare_model({"name_or_path": "builtin:tiny-gpt-neox"}, tmp_path / "base", seed=0)
    assert list((tmp_path / "base").glob("*.safetensors")) and not list((tmp_path / "base").glob("*.bin"))
    reloaded, tokenizer = load_prepared(tmp_path / "base")
    original, _ = build_tiny_model("tiny-gpt-neox", seed=0)
    for (name, p), (_, q) in zip(original.named_parameters(), reloaded.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    assert tokenizer.pad_token_id is not None


def test_unsupported_architecture_fails_in_prepare_model(tmp_path, monkeypatch):
    model, tokenizer = build_tiny_model("tiny-llama")
    model.config.model_type = "mamba"
    monkeypatch.setattr(stages, "load_source", lambda *a, **k: (model, tokenizer))
    with pytest.raises(ValueError, match="'mamba' is not supported"):
        stages.prepare_model({"name_or_path": "x"}, tmp_path / "base", seed=0)
    assert not (tmp_path / "base").exists()


def test_merge_writes_a_full_folder_with_the_trained_tensors(tmp_path):
    stages.prepare_model({"name_or_path": "builtin:tiny-llama"}, tmp_path / "base", seed=0)
    name = "model.layers.1.mlp.up_proj.weight"
    base, _ = load_prepared(tmp_path / "base")
    trained = {name: torch.ones_like(base.get_parameter(name))}
    io.save_tensors(tmp_path / "trained.safetensors", trained)
    stages.merge(tmp_path / "base", tmp_path / "trained.safetensors", tmp_path / "merged")
    merged, _ = load_prepared(tmp_path / "merged")
    for (n, p), (_, q) in zip(base.named_parameters(), merged.named_parameters(), strict=True):
        assert torch.equal(q, trained[n]) if n == name else torch.equal(p, q), n


def test_prepare_model_keeps_the_checkpoint_dtype(tmp_path):
    model, tokenizer = build_tiny_model("tiny-llama", seed=0)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    tokenizer.save_pretrained(tmp_path / "bf16")
    stages.prepare_model({"name_or_path": str(tmp_path / "bf16")}, tmp_path / "base", seed=0)
    assert {t.dtype for t in io.load_tensors(tmp_path / "base" / "model.safetensors").values()} == {torch.bfloat16}
    trained, _ = load_prepared(tmp_path / "base")  # training and evaluation read fp32 from it
    assert next(trained.parameters()).dtype == torch.float32
