"""SFT data: validation with file-and-line errors, prompt formatting, tokenization with a loss mask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from cofitune.infra import io
from cofitune.infra.io import DataError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
ALPACA_KEYS = ("instruction", "input", "output")
# Keys that datasets carry beside the example and that training never reads (Alpaca's rendered `text`).
METADATA_KEYS = ("id", "text", "source", "category", "metadata")

ALPACA_PROMPT = (
    "Below is an instruction that describes a task{with_input}. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
)


@dataclass(frozen=True)
class Example:
    """One validated SFT example: the conversation up to the response, and the response."""

    prompt_messages: tuple[dict[str, str], ...]
    response: str
    source: str  # "file:line", kept so later errors can still point at the input


def validate_record(record: Any, path: str | Path, line: int) -> Example:
    """Alpaca form (instruction, input, output) or chat form (messages); anything else is a DataError."""
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line)
    source = f"{path}:{line}"
    _check_keys(record, path, line)
    if "messages" in record:
        return _validate_chat(record["messages"], path, line, source)
    for key in ("instruction", "output"):
        if key not in record:
            raise DataError(path, f"missing field {key!r} (expected Alpaca 'instruction'/'input'/'output' or chat 'messages')", line)
    for key in ("instruction", "input", "output"):
        if key in record and not isinstance(record[key], str):
            raise DataError(path, f"field {key!r} must be a string, got {type(record[key]).__name__}", line)
    if not record["instruction"].strip():
        raise DataError(path, "empty 'instruction'", line)
    if not record["output"].strip():
        raise DataError(path, "empty 'output'", line)
    user = user_message(record["instruction"], record.get("input", ""))
    return Example(({"role": "user", "content": user},), record["output"], source)


def _check_keys(record: dict[str, Any], path: str | Path, line: int) -> None:
    """Refuse keys neither form knows (a typo such as `inptu` would lose the input unseen) and rows in both forms."""
    if "messages" in record and any(key in record for key in ALPACA_KEYS):
        both = [key for key in ALPACA_KEYS if key in record]
        raise DataError(path, f"has both chat 'messages' and Alpaca {both}: keep one form per row", line)
    known = ("messages", *METADATA_KEYS) if "messages" in record else (*ALPACA_KEYS, *METADATA_KEYS)
    unknown = [key for key in record if key not in known]
    if unknown:
        hints = [f"{key!r}" + (f" (did you mean {close[0]!r}?)" if (close := get_close_matches(key, known, n=1)) else "")
                 for key in unknown]
        raise DataError(path, f"unknown key {', '.join(hints)}; rows are Alpaca {list(ALPACA_KEYS)} or chat ['messages'], "
                        f"with optional {list(METADATA_KEYS)} (not used)", line)


def _validate_chat(messages: Any, path: str | Path, line: int, source: str) -> Example:
    if not isinstance(messages, list) or not messages:
        raise DataError(path, "'messages' must be a non-empty list", line)
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
            raise DataError(path, f"messages[{i}] must be an object with string 'role' and 'content'", line)
        if msg["role"] not in ROLES:
            raise DataError(path, f"messages[{i}].role {msg['role']!r} is not one of {ROLES}", line)
    if messages[-1]["role"] != "assistant":
        raise DataError(path, "the last message must be the assistant's response", line)
    if not messages[-1]["content"].strip():
        raise DataError(path, "empty assistant response", line)
    prompt = tuple({"role": m["role"], "content": m["content"]} for m in messages[:-1])
    if not any(m["role"] == "user" for m in prompt):
        raise DataError(path, "no user message before the response", line)
    return Example(prompt, messages[-1]["content"], source)


def user_message(instruction: str, input_text: str = "") -> str:
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def validate_file(path: str | Path) -> list[Example]:
    """Every example of an SFT JSONL file; one DataError lists every defect with its line."""
    return io.validated_jsonl(path, lambda record, line: validate_record(record, path, line))


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]) -> str:
    """The exact text the model sees before its response; training and evaluation share it."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return _alpaca_prompt(messages)


def _alpaca_prompt(messages: Sequence[dict[str, str]]) -> str:
    """Fallback for models without a chat template: the Alpaca template (system text folded in)."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m["content"] for m in messages if m["role"] != "system"]
    instruction = "\n\n".join(filter(None, [system, *turns]))
    return ALPACA_PROMPT.format(with_input="", instruction=instruction, input_block="")


def render_response(tokenizer: PreTrainedTokenizerBase, example: Example) -> str:
    """The response text exactly as the template closes it (end-of-turn token included)."""
    if not has_chat_template(tokenizer):
        return example.response + (tokenizer.eos_token or "")
    messages = [*example.prompt_messages, {"role": "assistant", "content": example.response}]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = render_prompt(tokenizer, example.prompt_messages)
    if not full.startswith(prompt):
        raise DataError(example.source, "the chat template does not render the prompt as a prefix of the conversation")
    return full[len(prompt):]


TRUNCATION_SIDES = ("left", "right")


@dataclass
class TokenizeReport:
    """Counts of one file (or of all of them): kept examples, how many were cut to max_length, how
    many were dropped because no response token was left, and the length that keeps every one whole."""

    examples: int = 0
    truncated: int = 0
    dropped_no_target: int = 0
    tokens: int = 0
    target_tokens: int = 0
    longest: int = 0  # tokens of the longest example before truncation: a max_length that truncates nothing

    @property
    def seen(self) -> int:
        return self.examples + self.dropped_no_target

    def add(self, other: TokenizeReport) -> None:
        for name in ("examples", "truncated", "dropped_no_target", "tokens", "target_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.longest = max(self.longest, other.longest)


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase, example: Example, max_length: int, loss_on: str = "response", truncation: str = "left"
) -> tuple[dict[str, list[int]], int]:
    """input_ids and labels (IGNORE_INDEX outside the loss); returns (features, tokens before truncation).
    A longer example is cut to max_length from the `left` (the prompt's start: the response survives)
    or from the `right` (the end: a long prompt can leave no response token)."""
    if loss_on not in ("response", "all"):
        raise ValueError(f"loss_on must be 'response' or 'all', got {loss_on!r}")
    if truncation not in TRUNCATION_SIDES:
        raise ValueError(f"truncation must be one of {TRUNCATION_SIDES}, got {truncation!r}")
    add_special = not has_chat_template(tokenizer)  # chat templates already carry their special tokens
    prompt_ids = tokenizer(render_prompt(tokenizer, example.prompt_messages), add_special_tokens=add_special)["input_ids"]
    response_ids = tokenizer(render_response(tokenizer, example), add_special_tokens=False)["input_ids"]
    input_ids = prompt_ids + response_ids
    prompt_labels = list(prompt_ids) if loss_on == "all" else [IGNORE_INDEX] * len(prompt_ids)
    labels = prompt_labels + list(response_ids)
    kept = slice(max(0, len(input_ids) - max_length), None) if truncation == "left" else slice(0, max_length)
    return {"input_ids": input_ids[kept], "labels": labels[kept]}, len(input_ids)


def tokenize_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_length: int, loss_on: str = "response",
    truncation: str = "left",
) -> tuple[list[dict[str, list[int]]], TokenizeReport]:
    """The examples that keep a response token within max_length, and what happened to the others.
    (Whether a loss is acceptable is the caller's decision: `check_losses`.)"""
    rows, report = [], TokenizeReport()
    for example in examples:
        features, length = tokenize_example(tokenizer, example, max_length, loss_on, truncation)
        report.truncated += length > max_length
        report.longest = max(report.longest, length)
        n_target = sum(label != IGNORE_INDEX for label in features["labels"][1:])
        if n_target == 0:
            report.dropped_no_target += 1
            continue
        rows.append(features)
        report.examples += 1
        report.tokens += len(features["input_ids"])
        report.target_tokens += n_target
    return rows, report


def check_losses(reports: Mapping[str, TokenizeReport], max_length: int, max_dropped_share: float) -> None:
    """Refuse to train when a file loses more than `max_dropped_share` of its examples (none kept at
    all is always refused), naming the file, the count and the max_length that keeps them."""
    for path, report in reports.items():
        if report.dropped_no_target and (report.examples == 0 or report.dropped_no_target > max_dropped_share * report.seen):
            raise DataError(path, f"{report.dropped_no_target} of {report.seen} examples have no response token within "
                                  f"training.max_length={max_length} and would be dropped (more than training.max_dropped_share="
                                  f"{max_dropped_share:g}); training.max_length: {report.longest} keeps every example whole")


def collate(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row; padded positions are masked and carry no loss."""
    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        input_ids[i, :n] = torch.tensor(row["input_ids"])
        labels[i, :n] = torch.tensor(row["labels"])
        attention[i, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
