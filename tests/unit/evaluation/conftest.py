"""Fixtures of the evaluation tests: lm-eval task folders made by `make_tasks` from tiny data."""

from __future__ import annotations

import pytest

from cofitune.infra import io
from cofitune.stages.data import make_tasks


@pytest.fixture
def task_dir(tmp_path, tiny_llama):
    model, tokenizer = tiny_llama
    (tmp_path / "model").mkdir()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    io.write_jsonl(tmp_path / "spe.jsonl", [{"instruction": f"What is {i}+1?", "output": str(i + 1)} for i in range(6)])
    io.write_jsonl(tmp_path / "mc.jsonl", [{"question": f"{i} is?", "choices": ["even", "odd"], "answer": i % 2} for i in range(6)])
    make_tasks(model_dir=tmp_path / "model", speciality={"add": {"test": str(tmp_path / "spe.jsonl"), "max_gen_toks": 4}},
               local_versatility={"parity": str(tmp_path / "mc.jsonl")}, out_dir=tmp_path / "tasks")
    return tmp_path / "tasks"
