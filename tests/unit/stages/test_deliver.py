"""Stage write_final_model: a Hugging Face folder in the base model's dtype that reloads with the
trained tensors, plus region.json and the model card."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cofitune.evidence.claims import Claim, claims_table
from cofitune.infra import io
from cofitune.models.modeling import build_tiny_model, save_model
from cofitune.stages.deliver import base_dtype, card_rows, write_final_model
from tests.unit.handoff.test_modelcard import final_model, summary_row

TRAINED = "model.layers.1.mlp.up_proj.weight"


@pytest.fixture
def bf16_base(tmp_path):
    model, tokenizer = build_tiny_model("tiny-llama", seed=0)
    model.to(torch.bfloat16)
    save_model(model, tokenizer, tmp_path / "base")
    return tmp_path / "base"


def test_base_dtype_is_what_the_prepared_folder_declares(bf16_base, tmp_path):
    assert base_dtype(bf16_base) == torch.bfloat16
    model, tokenizer = build_tiny_model("tiny-gpt2", seed=0)
    save_model(model, tokenizer, tmp_path / "fp32")
    assert base_dtype(tmp_path / "fp32") == torch.float32


def test_card_rows_put_the_final_model_first_then_the_references():
    summary = pa.Table.from_pylist([summary_row("full_sft", "Full SFT", 70.0), summary_row("x", "X", 95.0),
                                    summary_row("base", "Base", 60.0), summary_row("final", "CoFiTune", 90.0, True)])
    assert card_rows(summary, "final").column("candidate").to_pylist() == ["final", "base", "full_sft"]
    with pytest.raises(KeyError, match="'missing' has no row"):
        card_rows(summary, "missing")


def test_the_final_folder_reloads_in_the_base_dtype_with_the_trained_tensors(bf16_base, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(bf16_base)
    trained = torch.full(tuple(base.get_parameter(TRAINED).shape), 0.5)
    io.save_tensors(tmp_path / "trained.safetensors", {TRAINED: trained})
    card = final_model()
    card.train.write(tmp_path / "train_metrics.json")
    summary = pa.Table.from_pylist([summary_row("base", "Base", 60.0), summary_row(card.candidate, "CoFiTune", 90.0, True)])
    io.write_parquet(tmp_path / "summary.parquet", summary)
    config = {"model": {"name_or_path": "builtin:tiny-llama"}, "training": card.training,
              "speciality": {"train": ["data/x.jsonl"]}}
    claims = claims_table(summary.to_pylist(), [Claim("vs base", card.candidate, "base")],
                          {(card.candidate, "base"): {"spe": (1.0, 9.0, 0.01), "ver": (-4.0, 2.0, 0.4), "uni": (3.0, 40.0, 0.01)}})
    io.write_parquet(tmp_path / "claims.parquet", claims)
    write_final_model(model_dir=bf16_base, trained_file=tmp_path / "trained.safetensors", train_metrics=tmp_path / "train_metrics.json",
                      summary_file=tmp_path / "summary.parquet", candidate=card.candidate, config=config,
                      importance_sources={"sft": ["data/x.jsonl"]}, out_dir=tmp_path / "final", claims_file=tmp_path / "claims.parquet")

    final = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert final.dtype == torch.bfloat16 and not list((tmp_path / "final").glob("*.bin"))
    for name, value in final.named_parameters():
        expected = trained.to(torch.bfloat16) if name == TRAINED else base.get_parameter(name)
        assert torch.equal(value, expected), name
    assert AutoTokenizer.from_pretrained(tmp_path / "final").chat_template
    region = json.loads((tmp_path / "final" / "region.json").read_text())
    assert region["trainable_tensors"] == [TRAINED] and region["dtype"] == "bfloat16"
    assert region["importance_sources"] == {"sft": ["data/x.jsonl"]}
    card_text = (tmp_path / "final" / "README.md").read_text()
    assert card_text.index("**CoFiTune**") < card_text.index("| Base")
    assert "- vs base: CoFiTune vs Base (1 vs 1 seed(s)): Spe. " in card_text and "[+3.0, +40.0] p 0.030 higher" in card_text
