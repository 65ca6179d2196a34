"""lm-eval task definitions for local data: speciality tests and our own versatility suite.

Pure builders: they return the rows and the task config (a dict, dumped as an lm-eval YAML by
the io module). Speciality prompts are rendered here with the *same* function that formats the
training data, so evaluation asks exactly what training taught; multiple-choice rows keep lm-eval's
own prompt, optionally chat-formatted by lm-eval (`apply_chat_template`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from cofitune.data import render_prompt, user_message
from cofitune.io import DataError

SPECIALITY_PREFIX = "spe_"
MC_PROMPT = "Question: {{question}}\nAnswer:"


def validate_mc_row(row: Any, path: str | Path, line: int) -> dict[str, Any]:
    """A multiple-choice row: question (str), choices (2+ distinct strings), answer (index)."""
    if not isinstance(row, dict):
        raise DataError(path, f"expected a JSON object, got {type(row).__name__}", line)
    for key, kind in (("question", str), ("choices", list), ("answer", int)):
        if key not in row:
            raise DataError(path, f"missing field {key!r} (multiple-choice rows need question, choices, answer)", line)
        if not isinstance(row[key], kind) or isinstance(row[key], bool):
            raise DataError(path, f"field {key!r} must be {kind.__name__}, got {type(row[key]).__name__}", line)
    choices = row["choices"]
    if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
        raise DataError(path, "'choices' must hold at least two non-empty strings", line)
    if len(set(choices)) != len(choices):
        raise DataError(path, "'choices' has duplicates", line)
    if not 0 <= row["answer"] < len(choices):
        raise DataError(path, f"'answer' {row['answer']} is not an index into {len(choices)} choices", line)
    return row


def speciality_rows(
    records: Sequence[tuple[int, Any]], path: str | Path, tokenizer: PreTrainedTokenizerBase
) -> tuple[list[dict[str, Any]], str]:
    """Test rows with the rendered prompt; returns (rows, output_type).

    Alpaca-form rows (instruction, input, output) are scored by exact match of a greedy answer;
    rows that also carry `choices` and an integer `answer` make a multiple-choice task.
    """
    rows, kinds = [], set()
    for line, record in records:
        if not isinstance(record, dict) or not isinstance(record.get("instruction"), str) or not record["instruction"].strip():
            raise DataError(path, "test rows need a non-empty string 'instruction'", line)
        prompt = render_prompt(tokenizer, [{"role": "user", "content": user_message(record["instruction"], record.get("input", ""))}])
        if "choices" in record:
            validate_mc_row({**record, "question": record["instruction"]}, path, line)
            rows.append({"prompt": prompt, "choices": record["choices"], "answer": record["answer"]})
            kinds.add("multiple_choice")
        else:
            if not isinstance(record.get("output"), str) or not record["output"].strip():
                raise DataError(path, "test rows need a non-empty string 'output' (or 'choices' and 'answer')", line)
            rows.append({"prompt": prompt, "target": record["output"].strip()})
            kinds.add("generate_until")
    if len(kinds) != 1:
        raise DataError(path, "mixes multiple-choice and free-answer rows; split them into two tasks")
    return rows, kinds.pop()


def _local_dataset(data_file: Path) -> dict[str, Any]:
    # lm-eval resolves relative data paths against the working directory, so always absolute.
    return {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(data_file).resolve())}},
        "test_split": "test",
    }


def generation_task(name: str, data_file: Path, max_gen_toks: int) -> dict[str, Any]:
    """Greedy answer, first line, exact match ignoring case, punctuation and surrounding spaces."""
    return {
        "task": name,
        **_local_dataset(data_file),
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": ["\n"], "do_sample": False, "max_gen_toks": max_gen_toks},
        "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
        "metric_list": [
            {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True, "ignore_punctuation": True}
        ],
        "metadata": {"version": 1},
    }


def multiple_choice_task(name: str, data_file: Path, prompt_field: str | None = None) -> dict[str, Any]:
    """Log-likelihood of each choice after the prompt; acc and length-normalised acc."""
    return {
        "task": name,
        **_local_dataset(data_file),
        "output_type": "multiple_choice",
        "doc_to_text": "{{" + prompt_field + "}}" if prompt_field else MC_PROMPT,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}",
        "target_delimiter": "" if prompt_field else " ",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1},
    }
