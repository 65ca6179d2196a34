"""Config checks: every schema violation and cross-reference error names its key, before any job."""

from __future__ import annotations

from pathlib import Path

import pytest

from cofitune.configuration.checks import ConfigError, check_config, schema_errors, semantic_errors, static_specs
from cofitune.infra import io

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
SMOKE = Path(__file__).resolve().parents[3] / "workflow" / "presets" / "smoke.yaml"


@pytest.fixture
def config():
    return io.read_yaml(SMOKE)


def test_the_shipped_presets_are_valid(config):
    check_config(config, io.read_yaml(SCHEMA))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trainig": {}}, "(top level): unknown key(s) 'trainig'"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate: 'fast' is not of type 'number'"),
        ({"module_sets": {"attn_out": ["o"]}}, "module_sets: 'attn_out' does not match"),
        ({"candidates": [{"layers": "q2", "modules": "ffn_2"}]}, "candidates.0.modules: 'ffn_2' does not match"),
        ({"candidates": [{"method": "dora"}]}, "candidates.0.method: 'dora' is not one of"),
    ],
)
def test_schema_errors_name_the_key(config, change, message):
    errors = schema_errors({**config, **change}, io.read_yaml(SCHEMA))
    assert any(message in e for e in errors), errors


def test_cross_references_are_checked(config):
    bad = {**config, "evaluation": {**config["evaluation"], "rank_format": "chat", "formats": ["plain"]},
           "candidates": [{"layers": "q2", "modules": "attn"}]}
    errors = semantic_errors(bad)
    assert "evaluation.rank_format: must be one of evaluation.formats" in errors
    assert any(e.startswith("candidates: unknown module set 'attn'") for e in errors)
    with pytest.raises(ConfigError, match="invalid config:\n  "):
        check_config(bad, io.read_yaml(SCHEMA))


@pytest.mark.parametrize(
    ("gpus", "training", "message"),
    [
        ({"train": 4}, {"processes": 8, "launcher": "torchrun"}, "gpus.train: 4 GPUs for training.processes: 8"),
        ({"train": 1}, {"accelerate_config": "cpu"}, "gpus.train: 1 GPUs, but training.accelerate_config is 'cpu'"),
        ({"train": 8}, {"processes": 8, "launcher": "torchrun"}, None),
        ({"train": 1}, {"accelerate_config": "gpu"}, None),
        ({"train": 0, "evaluate": 1}, {}, None),
    ],
)
def test_gpus_per_training_job_must_fit_its_processes(config, gpus, training, message):
    errors = semantic_errors({**config, "gpus": gpus, "training": {**config["training"], **training}})
    assert len(errors) == (1 if message else 0), errors
    assert all(e.startswith(message) for e in errors), errors


def test_full_sft_learning_rates_and_candidate_overrides_are_checked(config):
    schema = io.read_yaml(SCHEMA)
    assert schema_errors({**config, "baselines": {"full_sft": [1e-4, 3e-5]},
                          "candidates": [{"layers": "q2", "modules": "ffn", "training": {"learning_rate": 1e-4, "max_steps": 2}}]}, schema) == []
    assert any("candidates.0.training: unknown key(s) 'batch_size'" in e for e in schema_errors(
        {**config, "candidates": [{"layers": "q2", "modules": "ffn", "training": {"batch_size": 2}}]}, schema))
    same = {**config, "baselines": {"full_sft": [config["training"]["learning_rate"]]}}
    assert semantic_errors(same) == ["baselines.full_sft: 0.001 is training.learning_rate, at which full_sft already trains; "
                                     "list only other rates"]


def test_static_specs_are_the_enabled_baselines_then_the_extras(config):
    specs = static_specs({**config, "candidates": [{"layers": "q2", "modules": "ffn"}]})
    assert specs[0] == {"layers": "all", "modules": "all"} and specs[-1] == {"layers": "q2", "modules": "ffn"}
    assert len(specs) == 10 + 1  # smoke enables all nine baseline kinds (one Wise-FT mix, full SFT at two rates)


def test_a_methods_refusal_is_named_even_when_another_candidate_is_refused_too():
    config = {"baselines": {"full_sft": False, "v_softmask": False, "mofo": {"enabled": True}}, "training": {"cpu_offload": True},
              "candidates": [{"layers": "q2", "modules": "attn"}]}
    errors = semantic_errors(config)
    assert [e for e in errors if e.startswith("candidates: unknown module set 'attn'")]
    assert [e for e in errors if e.startswith("baselines.mofo / method: mofo (mofo_0.15): not with training.cpu_offload")]


def test_full_sfts_extra_rate_equal_to_the_default_rate_is_refused_without_a_training_section():
    errors = semantic_errors({"baselines": {"full_sft": [4.0e-5]}})
    assert [e for e in errors if e.startswith("baselines.full_sft: 4e-05 is training.learning_rate")]


def test_an_sft_entry_is_a_path_or_an_object_with_options(config):
    schema = io.read_yaml(SCHEMA)
    entries = ["a.jsonl", "hf:org/name", {"path": "hf:org/name", "split": "train", "revision": None, "subset": "en"},
               {"path": "b.csv", "columns": {"instruction": "q", "output": "a"}, "format": "alpaca"}]
    assert schema_errors({**config, "speciality": {**config["speciality"], "train": entries}}, schema) == []
    assert schema_errors({**config, "importance": {"sources": {"general": entries}}}, schema) == []
    bad = {**config, "speciality": {**config["speciality"], "train": [{"path": "a.jsonl", "splt": "x"}, {"split": "x"},
                                                                         {"path": "a.jsonl", "columns": {"prompt": "q"}}, ""]}}
    assert schema_errors(bad, schema) == [
        "speciality.train.0: unknown key(s) 'splt'",
        "speciality.train.1: 'path' is a required property",
        "speciality.train.2.columns: 'prompt' is not one of ['instruction', 'input', 'output', 'messages', 'conversations', 'system']",
        "speciality.train.3: '' should be non-empty",
    ]
    loss = {**config, "training": {**config["training"], "loss_on": "assistant"}}
    assert schema_errors(loss, schema) == []


def test_the_same_file_as_a_path_and_as_an_object_is_listed_twice(tmp_path):
    from cofitune.configuration.checks import repeated_file_errors

    path = tmp_path / "train.csv"
    assert repeated_file_errors("speciality.train", [str(path), {"path": str(path), "columns": {"output": "a"}}, "other.csv"]) == [
        f"speciality.train[1]: {str(path)!r} is already speciality.train[0]; list each file once"]
