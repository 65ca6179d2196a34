"""SFT data: validation with file-and-line errors (rows: `formats`, sources: `sources`), prompt formatting,
tokenization with a loss mask (on the last response, every assistant turn, or everything)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from cofitune.data.formats import ALPACA_KEYS, METADATA_KEYS, ROLES, Example, to_example, user_message
from cofitune.data.sources import Source, validated_rows
from cofitune.data.turns import assistant_segments
from cofitune.infra.io import DataError

__all__ = ["ALPACA_KEYS", "IGNORE_INDEX", "METADATA_KEYS", "ROLES", "Example", "TokenizeReport", "check_losses", "collate",
           "render_prompt", "render_response", "tokenize_example", "tokenize_examples", "user_message", "validate_file",
           "validate_record"]

IGNORE_INDEX = -100
LOSS_ON = ("response", "assistant", "all")

ALPACA_PROMPT = (
    "Below is an instruction that describes a task{with_input}. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
)


def validate_record(record: Any, path: str | Path, line: int, fmt: str = "auto", columns: Mapping[str, str] | None = None) -> Example:
    """One row of a JSONL file in any row format (`formats.to_example`); a defect names file and line."""
    try:
        return to_example(record, f"{path}:{line}", fmt, columns)
    except DataError as err:
        raise DataError(path, err.reason, line) from None


def validate_file(entry: str | Path | Mapping[str, Any]) -> list[Example]:
    """Every example of a config entry (a file of any supported type, a Hub dataset, or an object with
    options); one DataError lists every defect with its line (JSONL) or row (the others)."""
    source = Source.parse(entry)
    columns = dict(source.columns)
    return validated_rows(source, lambda record, where: to_example(record, where, source.format, columns))


def source_label(entry: str | Path | Mapping[str, Any]) -> str:
    """How reports and messages name an entry: its path (a string entry: itself, as before)."""
    return str(entry) if isinstance(entry, str | Path) else Source.parse(entry).label


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
    The loss is on the last response (`response`), on every assistant turn (`assistant`, see `turns`),
    or on every token (`all`). A longer example is cut to max_length from the `left` (the prompt's
    start: the response survives) or from the `right` (the end: a long prompt can leave no response token)."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    if truncation not in TRUNCATION_SIDES:
        raise ValueError(f"truncation must be one of {TRUNCATION_SIDES}, got {truncation!r}")
    add_special = not has_chat_template(tokenizer)  # chat templates already carry their special tokens
    prompt, response = render_prompt(tokenizer, example.prompt_messages), render_response(tokenizer, example)
    if loss_on == "assistant":
        input_ids, labels = [], []
        for i, (text, target) in enumerate(assistant_segments(tokenizer, example, prompt, response)):
            ids = tokenizer(text, add_special_tokens=add_special and i == 0)["input_ids"]
            input_ids += ids
            labels += list(ids) if target else [IGNORE_INDEX] * len(ids)
    else:
        prompt_ids = tokenizer(prompt, add_special_tokens=add_special)["input_ids"]
        response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
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
