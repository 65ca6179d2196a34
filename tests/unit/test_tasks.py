"""lm-eval task definitions from local data: prompts like the training data, row validation."""

from __future__ import annotations

import pytest

from cofitune import io
from cofitune.tasks import speciality_rows, validate_mc_row


def test_speciality_prompts_are_rendered_like_the_training_data(tiny_llama):
    _, tokenizer = tiny_llama
    rows, kind = speciality_rows([(1, {"instruction": "Add", "input": "1 2", "output": " 3 "})], "t.jsonl", tokenizer)
    assert kind == "generate_until"
    assert rows == [{"prompt": "<|im_start|>user\nAdd\n\n1 2<|im_end|>\n<|im_start|>assistant\n", "target": "3"}]
    rows, kind = speciality_rows([(1, {"instruction": "Pick", "choices": ["a", "b"], "answer": 1})], "t.jsonl", tokenizer)
    assert kind == "multiple_choice" and rows[0]["choices"] == ["a", "b"]


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


def test_mixed_task_kinds_are_rejected(tiny_llama):
    records = [(1, {"instruction": "a", "output": "b"}), (2, {"instruction": "c", "choices": ["x", "y"], "answer": 0})]
    with pytest.raises(io.DataError, match="mixes multiple-choice and free-answer rows"):
        speciality_rows(records, "t.jsonl", tiny_llama[1])
