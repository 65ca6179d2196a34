"""loss_on: assistant puts the loss on every assistant turn, found by rendering the conversation turn by
turn; loss_on: response keeps it on the last one."""

from __future__ import annotations

import pytest

from cofitune.data.formats import Example
from cofitune.data.sft import IGNORE_INDEX, tokenize_example
from cofitune.infra.io import DataError

TURNS = [("user", "Add 1 2"), ("assistant", "3"), ("user", "Now times 4"), ("assistant", "12"), ("user", "Minus 5"),
         ("assistant", "7")]


def _example(turns=TURNS) -> Example:
    messages = tuple({"role": role, "content": text} for role, text in turns)
    return Example(messages[:-1], messages[-1]["content"], "chat.jsonl:7")


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_every_assistant_turn_is_labelled_token_by_token(tiny_llama):
    _, tokenizer = tiny_llama
    spans = [("<|im_start|>user\nAdd 1 2<|im_end|>\n<|im_start|>assistant\n", False), ("3<|im_end|>\n", True),
             ("<|im_start|>user\nNow times 4<|im_end|>\n<|im_start|>assistant\n", False), ("12<|im_end|>\n", True),
             ("<|im_start|>user\nMinus 5<|im_end|>\n<|im_start|>assistant\n", False), ("7<|im_end|>\n", True)]
    expected_ids = [t for text, _ in spans for t in _ids(tokenizer, text)]
    expected_labels = [t if target else IGNORE_INDEX for text, target in spans for t in _ids(tokenizer, text)]
    features, length = tokenize_example(tokenizer, _example(), max_length=512, loss_on="assistant")
    assert features["input_ids"] == expected_ids and length == len(expected_ids)
    assert features["labels"] == expected_labels
    assert tokenizer.decode(features["input_ids"]) == "".join(text for text, _ in spans)
    runs, run = [], []
    for token, label in zip(features["input_ids"], features["labels"], strict=True):
        if label != IGNORE_INDEX:
            run.append(token)
        elif run:
            runs, run = [*runs, run], []
    assert [tokenizer.decode(r) for r in [*runs, run]] == ["3<|im_end|>\n", "12<|im_end|>\n", "7<|im_end|>\n"]

    last_only, _ = tokenize_example(tokenizer, _example(), max_length=512, loss_on="response")
    assert last_only["input_ids"] == features["input_ids"]  # the same text: only the labels differ
    n_last = len(_ids(tokenizer, "7<|im_end|>\n"))
    assert last_only["labels"] == [IGNORE_INDEX] * (len(expected_ids) - n_last) + expected_ids[-n_last:]


def test_one_assistant_turn_gives_the_same_tokens_as_response(tiny_llama):
    _, tokenizer = tiny_llama
    single = _example(TURNS[:2])
    assert tokenize_example(tokenizer, single, 64, loss_on="assistant") == tokenize_example(tokenizer, single, 64)
    tokenizer.chat_template = None  # the Alpaca fallback: one assistant turn is still fine
    assert tokenize_example(tokenizer, single, 64, loss_on="assistant") == tokenize_example(tokenizer, single, 64)


def test_earlier_turns_without_a_chat_template_are_refused(tiny_llama):
    _, tokenizer = tiny_llama
    tokenizer.chat_template = None
    with pytest.raises(DataError, match=r"^chat.jsonl:7: has 3 assistant turns, and training.loss_on: assistant needs a chat "
                                        r"template to tell them apart"):
        tokenize_example(tokenizer, _example(), 512, loss_on="assistant")
    tokenize_example(tokenizer, _example(), 512, loss_on="response")  # the folded instruction, as before


def test_a_template_that_rewrites_earlier_turns_is_refused_naming_the_example(tiny_llama):
    _, tokenizer = tiny_llama
    tokenizer.chat_template = (  # earlier assistant turns are dropped, as reasoning templates drop their thoughts
        "{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}<|im_start|>assistant\n...<|im_end|>\n"
        "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(DataError, match=r"^chat.jsonl:7: the chat template does not render the conversation turn by turn \(the "
                                        r"render of its first 2 messages is not a prefix of the whole\)"):
        tokenize_example(tokenizer, _example(), 512, loss_on="assistant")


def test_an_unknown_loss_is_refused(tiny_llama):
    _, tokenizer = tiny_llama
    with pytest.raises(ValueError, match=r"loss_on must be one of \('response', 'assistant', 'all'\), got 'assistants'"):
        tokenize_example(tokenizer, _example(), 64, loss_on="assistants")
