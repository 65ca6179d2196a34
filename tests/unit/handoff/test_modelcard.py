"""The final model's hand-off files: region.json says exactly what was trained, the card shows it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cofitune.handoff.modelcard import FinalModel, render_model_card
from cofitune.handoff.region_file import REGION_VERSION, region_manifest
from cofitune.infra.records import TrainRecord


def summary_row(candidate: str, label: str, uni: float, cofitune: bool = False) -> dict:
    row = {"candidate": candidate, "label": label, "method": "region" if cofitune else "base", "layer_range": "",
           "module_set": "", "softmask": cofitune, "trainable_params": 10, "trainable_fraction": 0.1,
           "train_wall_seconds": 1.0, "spe": uni / 2, "ver": uni / 2, "uni": uni, "ver_retention": 1.0,
           "spe_gain_ratio": 0.5, "pareto": True, "cofitune": cofitune}
    for metric in ("spe", "ver", "uni", "ver_retention", "spe_gain_ratio"):
        row[f"{metric}_lo"], row[f"{metric}_hi"] = row[metric] - 1, row[metric] + 1
    return row


def final_model(base: str = "org/instruct-model", dtype: str = "bfloat16", softmask: bool = True) -> FinalModel:
    record = TrainRecord(
        candidate="0.5-0.75_ffn_softmask", method="region", layer_range="0.5-0.75", module_set="ffn", softmask=softmask, mask_control="",
        options={}, layer_indices=[2, 3, 4], trainable_tensors=6, trainable_params=1200, total_params=10000, steps=22,
        resumed_from_step=0, final_loss=1.25, input_tokens=100, target_tokens=50, wall_seconds=3.0, tokens_per_second=10.0,
        precision="no", processes=1, sharding="none", softmask_tensors=6 if softmask else 0,
        softmask_parts=["intermediate", "output"] if softmask else [], softmask_apply="update" if softmask else "", seed=7, learning_rate=3e-4,
    )
    summary = pa.Table.from_pylist([summary_row("0.5-0.75_ffn_softmask", "CoFiTune", 90.0, cofitune=True),
                                    summary_row("base", "Base", 60.0)])
    names = [f"model.layers.{i}.mlp.{m}.weight" for i in (2, 3, 4) for m in ("down_proj", "up_proj")]
    return FinalModel(
        candidate="0.5-0.75_ffn_softmask", base_model=base, base_revision=None, dtype=dtype, train=record,
        trained_names=names, training={"learning_rate": 3e-4, "micro_batch_size": 8, "gradient_accumulation_steps": 1,
                                       "max_length": 192, "loss_on": "response"},
        train_files=["data/speciality/arith/train.jsonl"], importance_sources={"sft": ["data/a.jsonl"]} if softmask else {},
        summary=summary, config_hash="abc123", versions={"torch": "2.13.0"},
    )


def test_the_region_manifest_lists_exactly_what_was_trained():
    final = final_model()
    manifest = region_manifest(final)
    assert manifest["record"] == "cofitune_region" and manifest["version"] == REGION_VERSION == 2
    assert manifest["trainable_tensors"] == list(final.trained_names)
    assert manifest["layer_indices"] == [2, 3, 4] and manifest["module_set"] == "ffn" and manifest["softmask"] is True
    assert manifest["softmask_parts"] == ["intermediate", "output"] and manifest["importance_sources"] == {"sft": ["data/a.jsonl"]}
    assert manifest["dtype"] == "bfloat16" and manifest["seed"] == 7 and manifest["config_hash"] == "abc123"


def test_the_card_names_base_region_mask_training_and_the_scores_with_intervals():
    card = render_model_card(final_model())
    front, _, body = card.removeprefix("---\n").partition("\n---\n")
    assert "base_model: org/instruct-model" in front and "library_name: transformers" in front
    assert "decoder layers 2-4" in body and "6 tensors, 1,200 parameters (12.0% of 10,000)" in body
    assert "soft-mask (fine level): on" in body and "sft (`data/a.jsonl`)" in body
    assert "22 steps, learning rate 0.0003" in body and "seed 7" in body and "final training loss: 1.2500" in body
    assert "| **CoFiTune** * |" in body and "90.0 [89.0, 91.0]" in body and "| Base * |" in body
    assert "stored here in bfloat16" in body and "AutoModelForCausalLM.from_pretrained" in body


@pytest.mark.parametrize(("base", "dtype", "softmask"), [("builtin:tiny-llama", "float32", False)])
def test_a_builtin_base_has_no_hub_link_and_fp32_needs_no_rounding_note(base, dtype, softmask):
    card = render_model_card(final_model(base, dtype, softmask))
    assert "base_model:" not in card and "stored here in" not in card
    assert "soft-mask (fine level): off" in card
