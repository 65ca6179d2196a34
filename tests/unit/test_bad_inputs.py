"""The catalogue of bad inputs (tests/bad_inputs.yaml): each gives its exact message before any job,
and the README's troubleshooting table is the catalogue."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from cofitune.configuration.checks import ConfigError, check_config, check_config_files, check_inputs
from cofitune.infra import io

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = io.read_yaml(REPO / "tests" / "bad_inputs.yaml")
GOOD_SFT = '{"instruction": "Add", "input": "1 2", "output": "3"}'


def _situation(case: dict, workdir: Path) -> dict:
    """The smoke preset with the case's defect, as files in `workdir` (the working directory)."""
    config = io.read_yaml(REPO / "workflow" / "presets" / "smoke.yaml")
    kind, value = case["kind"], copy.deepcopy(case["input"])  # the schema's defaults are filled in place
    if kind == "sft":
        (workdir / "train.jsonl").write_text(value + "\n", encoding="utf-8")
        config["speciality"]["train"] = ["train.jsonl"]
    elif kind == "file":
        path = workdir / "train.jsonl"
        if value == "latin-1":
            path.write_bytes('{"instruction": "Caf\u00e9", "output": "x"}\n'.encode("latin-1"))
        elif value == "directory":
            path.mkdir()
        elif value == "empty":
            path.write_text("\n")
        elif value == "three defects":
            path.write_text("\n".join([GOOD_SFT, "[1]", "{", '{"output": "x"}']) + "\n")
        elif value == "JSON array":
            path.write_text("[\n  " + ",\n  ".join([GOOD_SFT, GOOD_SFT]) + "\n]\n")
        elif value == "Parquet":
            pq.write_table(pa.table({"instruction": ["Add"], "output": ["3"]}), path)
        elif value == "CSV":
            path = workdir / "train.csv"
            path.write_text("instruction,input,output\nAdd,1 2,3\n")
        config["speciality"]["train"] = [path.name]
        if value == "listed twice":
            path.write_text(GOOD_SFT + "\n")
            config["speciality"]["train"] = ["train.jsonl", "./train.jsonl"]
    elif kind == "test":
        (workdir / "spe.jsonl").write_text(value + "\n")
        config["speciality"]["tasks"]["arith"]["test"] = "spe.jsonl"
    elif kind == "mc":
        (workdir / "vk.jsonl").write_text(value + "\n")
        config["versatility"]["local_tasks"]["vk_world"] = "vk.jsonl"
    elif kind == "local task":
        (workdir / "vk.jsonl").write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n')
        config["versatility"]["local_tasks"][value] = "vk.jsonl"
        config["versatility"]["groups"]["knowledge"].append(value)
    elif kind == "config":
        config.update(value)
    elif kind == "config file":
        (workdir / "overlay.yaml").write_text(value)
        config["_config_files"] = ["overlay.yaml"]
    elif kind == "model folder":
        config["model"] = {"name_or_path": str(_model_folder(workdir / "my-model", value))}
    elif kind == "include_path":
        (workdir / "extra").mkdir()
        (workdir / "extra" / "vk_extra.yaml").write_text(value)
        config["versatility"]["include_path"] = ["extra"]
    elif kind == "model":
        config["model"] = {"name_or_path": value}
    elif kind == "task":
        config["versatility"]["groups"]["knowledge"].append(value)
    return config


def _model_folder(folder: Path, defect: str) -> Path:
    """A Hugging Face model folder with one defect: no tokenizer files, or weights cut short."""
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    if defect != "no tokenizer":
        (folder / "tokenizer.json").write_text("{}")
    io.save_tensors(folder / "model.safetensors", {"w": torch.zeros(64, 64)})
    if defect == "truncated weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[:100])
    return folder


def _preflight(config: dict) -> None:
    """What the Snakefile runs before planning: the config files read strictly, the schema with
    defaults, cross-references, inputs."""
    from snakemake.utils import validate

    check_config_files(config.pop("_config_files", []))
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    check_config(config, io.read_yaml(schema))
    validate(config, str(schema))
    check_inputs(config, project=REPO)


@pytest.mark.parametrize("case", CATALOGUE, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CATALOGUE)])
def test_each_bad_input_gives_its_message_before_any_job(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")
    with pytest.raises(ConfigError) as err:
        _preflight(_situation(case, tmp_path))
    assert case["message"] in str(err.value)


def test_the_smoke_preset_passes_the_preflight(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")
    _preflight(io.read_yaml(REPO / "workflow" / "presets" / "smoke.yaml"))


def render_table() -> str:
    """The catalogue as the README's troubleshooting table."""
    kinds = {"sft": "SFT data row", "file": "data file", "test": "speciality test row", "mc": "versatility task row",
             "config": "config", "model": "model", "task": "task name", "local task": "local task name",
             "config file": "config file", "model folder": "model folder", "include_path": "task YAML under include_path"}
    lines = ["| what | input | message |", "|---|---|---|"]
    for case in CATALOGUE:
        shown = case["input"].replace("\n", "\\n") if isinstance(case["input"], str) else json.dumps(case["input"])  # one table line
        cells = [kinds[case["kind"]], f"`{shown}`", f"`{case['message']}`"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def test_the_readme_troubleshooting_table_is_the_catalogue():
    assert render_table() in (REPO / "README.md").read_text(), "regenerate: python -c 'from tests.unit.test_bad_inputs import render_table; print(render_table())'"
