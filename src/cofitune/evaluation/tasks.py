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

from cofitune.data.sft import render_prompt, user_message
from cofitune.infra import io
from cofitune.infra.io import DataError

SPECIALITY_PREFIX = "spe_"
MC_PROMPT = "Question: {{question}}\nAnswer:"
# Free answers are generated until the first of these: a target that contains one can never match.
STOP_SEQUENCES = ("\n",)


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


def validate_mc_file(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a multiple-choice task file; one DataError lists every defect with its line."""
    return io.validated_jsonl(path, lambda row, line: validate_mc_row(row, path, line))


def validate_speciality_row(record: Any, path: str | Path, line: int) -> dict[str, Any]:
    """A speciality test row: Alpaca form with `output` (free answer), or with `choices` and `answer`."""
    if not isinstance(record, dict) or not isinstance(record.get("instruction"), str) or not record["instruction"].strip():
        raise DataError(path, "test rows need a non-empty string 'instruction'", line)
    if not isinstance(record.get("input", ""), str):
        raise DataError(path, f"field 'input' must be a string, got {type(record['input']).__name__}", line)
    if "choices" in record:
        validate_mc_row({**record, "question": record["instruction"]}, path, line)
    elif not isinstance(record.get("output"), str) or not record["output"].strip():
        raise DataError(path, "test rows need a non-empty string 'output' (or 'choices' and 'answer')", line)
    elif stops := [stop for stop in STOP_SEQUENCES if stop in record["output"].strip()]:
        raise DataError(path, f"'output' contains {stops[0]!r}, where generation stops, so it can never be matched; "
                        "put the answer on one line", line)
    return record


def validate_speciality_file(path: str | Path) -> tuple[list[dict[str, Any]], str]:
    """The rows of a speciality test file and its lm-eval output type (one kind per file)."""
    rows = io.validated_jsonl(path, lambda record, line: validate_speciality_row(record, path, line))
    kinds = {"multiple_choice" if "choices" in row else "generate_until" for row in rows}
    if len(kinds) != 1:
        raise DataError(path, "mixes multiple-choice and free-answer rows; split them into two tasks")
    return rows, kinds.pop()


def speciality_rows(records: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase) -> list[dict[str, Any]]:
    """Validated test rows with the prompt rendered exactly as the training data's."""
    rows = []
    for record in records:
        prompt = render_prompt(tokenizer, [{"role": "user", "content": user_message(record["instruction"], record.get("input", ""))}])
        if "choices" in record:
            rows.append({"prompt": prompt, "choices": record["choices"], "answer": record["answer"]})
        else:
            rows.append({"prompt": prompt, "target": record["output"].strip()})
    return rows


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
        "generation_kwargs": {"until": list(STOP_SEQUENCES), "do_sample": False, "max_gen_toks": max_gen_toks},
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
