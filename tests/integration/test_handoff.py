"""The hand-off of the smoke run: the final model folder and the region exports."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
from snakemake.utils import validate
from transformers import AutoModelForCausalLM

from cofitune.configuration.evaluation import evaluation_settings
from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra import io
from cofitune.stages.evaluate import evaluate_candidate
from tests.integration.helpers import PRESETS, REPO

pytestmark = pytest.mark.integration


def _final_id(workdir):
    summary = pq.read_table(workdir / "results" / "tables" / "summary.parquet").to_pylist()
    return next(r["candidate"] for r in summary if r["cofitune"])


def test_the_final_model_reloads_with_exactly_the_trained_region(smoke):
    final_dir, candidate = smoke / "results" / "final", _final_id(smoke)
    trained = io.load_tensors(smoke / "results" / "train" / candidate / "trained.safetensors")
    base = AutoModelForCausalLM.from_pretrained(smoke / "results" / "model" / "base")
    final = AutoModelForCausalLM.from_pretrained(final_dir)
    assert final.dtype == base.dtype
    for name, value in final.named_parameters():
        assert torch.equal(value, trained[name] if name in trained else base.get_parameter(name)), name
    region = json.loads((final_dir / "region.json").read_text())
    assert region["candidate"] == candidate and sorted(region["trainable_tensors"]) == sorted(trained)
    card = (final_dir / "README.md").read_text()
    assert f"# {candidate}: CoFiTune fine-tune of builtin:tiny-llama" in card and "| **CoFiTune**" in card
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in final_dir.iterdir()}


def test_the_final_model_scores_what_its_evaluation_job_scored(smoke, tmp_path, monkeypatch):
    monkeypatch.chdir(smoke)  # the config's paths are relative to the run's working directory
    config = io.read_yaml(PRESETS / "smoke.yaml")
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # fills the defaults, as the workflow does
    candidate = _final_id(smoke)
    evaluate_candidate(model_dir=smoke / "results" / "final", trained_file=None, tasks_dir=smoke / "results" / "tasks",
                       evaluation=EvaluationSection.from_settings(evaluation_settings(config)), candidate_id=candidate, split="confirm",
                       metrics_file=tmp_path / "metrics.json", samples_file=tmp_path / "samples.parquet")
    again = pq.read_table(tmp_path / "samples.parquet").to_pylist()
    recorded = pq.read_table(smoke / "results" / "eval" / "confirm" / candidate / "samples.parquet").to_pylist()
    assert len(again) == len(recorded) > 0
    assert [(r["task"], r["doc_id"], r["prediction"], r["score"]) for r in again] == \
           [(r["task"], r["doc_id"], r["prediction"], r["score"]) for r in recorded]


def test_the_export_selects_the_final_models_tensors_in_peft(smoke):
    from peft import LoraConfig, get_peft_model

    export, candidate = smoke / "results" / "export", _final_id(smoke)
    trained = sorted(io.load_tensors(smoke / "results" / "train" / candidate / "trained.safetensors"))
    assert sorted(json.loads((export / "hf_params.json").read_text())) == trained
    config = LoraConfig(**json.loads((export / "peft_lora_config.json").read_text()))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smoke / "results" / "final"), config)
    adapted = {name.removeprefix("base_model.model.") + ".weight" for name, module in model.named_modules()
               if hasattr(module, "lora_A") and name.endswith(tuple(config.target_modules))}
    assert adapted == {n for n in trained if n.endswith(".weight")}
    assert "unfrozen_parameters" in (export / "axolotl.yaml").read_text()
