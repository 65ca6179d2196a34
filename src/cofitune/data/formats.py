"""Row formats of SFT data, each checked into one `Example`: Alpaca (instruction/input/output), chat
`messages` (string content or OpenAI text parts), ShareGPT `conversations` (from/value), and any of
them under other column names through a `columns:` mapping.

Every check raises a DataError whose `reason` the caller places at the row's line or index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from cofitune.infra.io import DataError

ROLES = ("system", "user", "assistant")
ALPACA_KEYS = ("instruction", "input", "output")
# Keys that datasets carry beside the example and that training never reads (Alpaca's rendered `text`).
METADATA_KEYS = ("id", "text", "source", "category", "metadata")
# Each format's keys; the first is the one that tells the format.
FORM_KEYS = {"alpaca": ALPACA_KEYS, "messages": ("messages",), "sharegpt": ("conversations", "system")}
FORM_NAMES = {"alpaca": "Alpaca", "messages": "chat", "sharegpt": "ShareGPT"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Example:
    """One validated SFT example: the conversation up to the last response, and that response."""

    prompt_messages: tuple[dict[str, str], ...]
    response: str
    source: str  # "file:line" or "file row N", kept so later errors can still point at the input

    @property
    def messages(self) -> tuple[dict[str, str], ...]:
        """The whole conversation, the response last (what loss_on: assistant labels turn by turn)."""
        return (*self.prompt_messages, {"role": "assistant", "content": self.response})


def user_message(instruction: str, input_text: str = "") -> str:
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def to_example(record: Any, source: str, fmt: str = "auto", columns: Mapping[str, str] | None = None) -> Example:
    """The row as an Example; a defect is a DataError (its reason says what, the caller says where)."""
    if not isinstance(record, dict):
        raise DataError(source, f"expected a JSON object, got {type(record).__name__}")
    record = _renamed(record, columns or {}, source)
    form = _form(record, fmt, source)
    if form != "alpaca" and FORM_KEYS[form][0] not in record:
        raise DataError(source, f"missing field {FORM_KEYS[form][0]!r} (the entry's format is {form})")
    _check_keys(record, form, source)
    if form == "messages":
        return _chat_example(record["messages"], "messages", source)
    if form == "sharegpt":
        return _chat_example(_sharegpt_messages(record, source), "conversations", source)
    return _alpaca_example(record, source)


def _renamed(record: dict[str, Any], columns: Mapping[str, str], source: str) -> dict[str, Any]:
    """The row with each mapped column under its canonical name (`columns: {instruction: question}`)."""
    if not columns:
        return record
    renamed = {key: value for key, value in record.items() if key not in columns.values()}
    for name, column in columns.items():
        if name in renamed:
            raise DataError(source, f"has both {name!r} and {column!r}, which columns maps onto {name!r}")
        if column in record:
            renamed[name] = record[column]
        elif name in ("instruction", "output", "messages", "conversations"):
            raise DataError(source, f"missing column {column!r} (mapped onto {name!r} by columns)")
    return renamed


def _form(record: dict[str, Any], fmt: str, source: str) -> str:
    """The row's format: the configured one, or (auto) the one its keys tell; keys of two is a defect."""
    if fmt != "auto":
        return fmt
    telling = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ALPACA_KEYS}
    present = {form: [key for key in keys if key in record] for form, keys in telling.items()}
    present = {form: keys for form, keys in present.items() if keys}
    if len(present) > 1:
        named = [f"{FORM_NAMES[form]} {keys if form == 'alpaca' else repr(keys[0])}" for form, keys in present.items()]
        raise DataError(source, f"has both {' and '.join(named)}: keep one form per row")
    return next(iter(present), "alpaca")


def _check_keys(record: dict[str, Any], form: str, source: str) -> None:
    """Refuse keys the row's format does not know (a typo such as `inptu` would lose the input unseen)."""
    known = (*FORM_KEYS[form], *METADATA_KEYS)
    unknown = [key for key in record if key not in known]
    if unknown:
        hints = [f"{key!r}" + (f" (did you mean {close[0]!r}?)" if (close := get_close_matches(key, known, n=1)) else "")
                 for key in unknown]
        raise DataError(source, f"unknown key {', '.join(hints)}; rows are Alpaca {list(ALPACA_KEYS)} or chat ['messages'] "
                                f"or ShareGPT ['conversations'], with optional {list(METADATA_KEYS)} (not used); "
                                "other names can be mapped with the entry's `columns`")


def _alpaca_example(record: dict[str, Any], source: str) -> Example:
    for key in ("instruction", "output"):
        if key not in record:
            raise DataError(source, f"missing field {key!r} (expected Alpaca 'instruction'/'input'/'output' or chat 'messages')")
    for key in ALPACA_KEYS:
        if key in record and not isinstance(record[key], str):
            raise DataError(source, f"field {key!r} must be a string, got {type(record[key]).__name__}")
    if not record["instruction"].strip():
        raise DataError(source, "empty 'instruction'")
    if not record["output"].strip():
        raise DataError(source, "empty 'output'")
    user = user_message(record["instruction"], record.get("input", ""))
    return Example(({"role": "user", "content": user},), record["output"], source)


def _sharegpt_messages(record: dict[str, Any], source: str) -> list[Any]:
    """ShareGPT turns ({from: human|gpt|system, value}) as chat messages; a top-level `system` first."""
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise DataError(source, "'conversations' must be a non-empty list")
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("from"), str) or not isinstance(turn.get("value"), str):
            raise DataError(source, f"conversations[{i}] must be an object with string 'from' and 'value'")
        if turn["from"] not in SHAREGPT_ROLES:
            raise DataError(source, f"conversations[{i}].from {turn['from']!r} is not one of {tuple(SHAREGPT_ROLES)}")
        messages.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]})
    return messages


def _chat_example(messages: Any, key: str, source: str) -> Example:
    if not isinstance(messages, list) or not messages:
        raise DataError(source, f"{key!r} must be a non-empty list")
    chat = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or "content" not in msg:
            raise DataError(source, f"{key}[{i}] must be an object with string 'role' and 'content'")
        if msg["role"] not in ROLES:
            raise DataError(source, f"{key}[{i}].role {msg['role']!r} is not one of {ROLES}")
        chat.append({"role": msg["role"], "content": _text(msg["content"], f"{key}[{i}]", source)})
    if chat[-1]["role"] != "assistant":
        raise DataError(source, "the last message must be the assistant's response")
    if not chat[-1]["content"].strip():
        raise DataError(source, "empty assistant response")
    if not any(m["role"] == "user" for m in chat[:-1]):
        raise DataError(source, "no user message before the response")
    return Example(tuple(chat[:-1]), chat[-1]["content"], source)


def _text(content: Any, where: str, source: str) -> str:
    """A message's text: a string, or OpenAI content parts of type text joined as chat templates join
    them (with nothing between); an image or audio part cannot be trained on by a text model."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise DataError(source, f"{where}.content must be a string or a non-empty list of text parts, got {type(content).__name__}")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            shown = f"a part of type {kind!r}" if isinstance(kind, str) else "not a typed part"
            raise DataError(source, f"{where}.content[{j}] is {shown}; only text parts "
                                    "({'type': 'text', 'text': ...}) can be trained on")
        if not isinstance(part.get("text"), str):
            raise DataError(source, f"{where}.content[{j}] is a text part without a string 'text'")
        texts.append(part["text"])
    return "".join(texts)
