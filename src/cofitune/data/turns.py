"""`loss_on: assistant`: the conversation cut into text segments, each assistant turn a target.

The chat template renders the conversation once per assistant turn k: the messages before it with
the generation prompt (where the turn starts) and with it (where it ends). Every such render must
be a prefix of the whole conversation's render, so the turns' spans are exact; a template that
rewrites earlier turns (one that drops reasoning, say) breaks that and is refused for this example.
This is TRL's assistant-only loss without needing `{% generation %}` markers in the template.

Without a chat template the Alpaca fallback folds earlier turns into the instruction, where no
assistant turn of its own is left to label: a conversation with one assistant turn gets the same
segments as `response`, one with earlier assistant turns is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from cofitune.data.formats import Example
from cofitune.infra.io import DataError


def assistant_segments(tokenizer: PreTrainedTokenizerBase, example: Example, prompt: str, response: str) -> list[tuple[str, bool]]:
    """(text, is a target) segments whose concatenation is the rendered conversation; `prompt` and
    `response` are the last turn's split as `loss_on: response` renders it."""
    messages = list(example.messages)
    earlier = [k for k, m in enumerate(messages[:-1]) if m["role"] == "assistant"]
    if not earlier:
        return [(prompt, False), (response, True)]
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(example.source, f"has {len(earlier) + 1} assistant turns, and training.loss_on: assistant needs a chat "
                                        "template to tell them apart (this tokenizer has none; its Alpaca fallback folds earlier "
                                        "turns into the instruction); use loss_on: response or a model with a chat template")
    whole = _render(tokenizer, messages, example, generation_prompt=False)
    segments, end = [], 0
    for k in [*earlier, len(messages) - 1]:
        start = len(_prefix(tokenizer, messages[:k], whole, example, generation_prompt=True))
        stop = len(_prefix(tokenizer, messages[: k + 1], whole, example, generation_prompt=False))
        if not end <= start <= stop:
            raise _not_turn_by_turn(example, k)
        segments += [(whole[end:start], False), (whole[start:stop], True)]
        end = stop
    segments.append((whole[end:], False))
    return [(text, target) for text, target in segments if text]


def _prefix(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], whole: str, example: Example,
            generation_prompt: bool) -> str:
    text = _render(tokenizer, messages, example, generation_prompt)
    if not whole.startswith(text):
        raise _not_turn_by_turn(example, len(messages))
    return text


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], example: Example, generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as err:  # jinja2's TemplateError, or a template's own raise_exception
        raise DataError(example.source, f"the chat template cannot render the first {len(messages)} messages "
                                        f"({type(err).__name__}: {err}), so loss_on: assistant cannot find the turns") from err


def _not_turn_by_turn(example: Example, k: int) -> DataError:
    return DataError(example.source, f"the chat template does not render the conversation turn by turn (the render of its first "
                                     f"{k} messages is not a prefix of the whole), so training.loss_on: assistant cannot find "
                                     "the assistant turns; use loss_on: response")
