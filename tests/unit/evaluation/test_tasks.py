"""lm-eval task definitions from local data: prompts like the training data, row validation."""

from __future__ import annotations

import pytest

from cofitune.evaluation.tasks import speciality_rows, validate_mc_file, validate_mc_row, validate_speciality_file
from cofitune.infra import io


def test_speciality_prompts_are_rendered_like_the_training_data(tiny_llama, tmp_path):
    _, tokenizer = tiny_llama
    io.write_jsonl(tmp_path / "t.jsonl", [{"instruction": "Add", "input": "1 2", "output": " 3 "}])
    records, kind = validate_speciality_file(tmp_path / "t.jsonl")
    assert kind == "generate_until"
    assert speciality_rows(records, tokenizer) == [{"prompt": "<|im_start|>user\nAdd\n\n1 2<|im_end|>\n<|im_start|>assistant\n", "target": "3"}]
    io.write_jsonl(tmp_path / "t.jsonl", [{"instruction": "Pick", "choices": ["a", "b"], "answer": 1}])
    records, kind = validate_speciality_file(tmp_path / "t.jsonl")
    assert kind == "multiple_choice" and speciality_rows(records, tokenizer)[0]["choices"] == ["a", "b"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "q", "choices": ["a", "b"]}, "missing field 'answer'"),
        ({"question": "q", "choices": ["a", "a"], "answer": 0}, "duplicates"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "not an index"),
        ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be list"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "'answer' must be int"),
    ],
)
def test_multiple_choice_rows_are_validated_with_file_and_line(row, message):
    with pytest.raises(io.DataError, match=message) as err:
        validate_mc_row(row, "v.jsonl", 7)
    assert str(err.value).startswith("v.jsonl:7: ")


def test_mixed_task_kinds_are_rejected(tmp_path):
    io.write_jsonl(tmp_path / "t.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c", "choices": ["x", "y"], "answer": 0}])
    with pytest.raises(io.DataError, match="mixes multiple-choice and free-answer rows"):
        validate_speciality_file(tmp_path / "t.jsonl")


def test_task_files_report_every_defect(tmp_path):
    io.write_jsonl(tmp_path / "v.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": 0}, {"question": "q"}, {"choices": ["a"]}])
    with pytest.raises(io.DataError, match=r"2 defects in .*v.jsonl \(2 of 3 rows\)") as err:
        validate_mc_file(tmp_path / "v.jsonl")
    assert ":2: missing field 'choices'" in str(err.value) and ":3: missing field 'question'" in str(err.value)
    io.write_jsonl(tmp_path / "t.jsonl", [{"instruction": "a"}, {"instruction": "", "output": "x"}])
    with pytest.raises(io.DataError, match="2 defects"):
        validate_speciality_file(tmp_path / "t.jsonl")
