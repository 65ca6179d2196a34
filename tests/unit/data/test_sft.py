"""SFT data: every defect is reported with file and line; formatting and the loss mask."""

from __future__ import annotations

import pytest

from cofitune.data.sft import IGNORE_INDEX, render_prompt, tokenize_example, tokenize_examples, validate_file
from cofitune.infra import io


def _load(tmp_path, lines):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return validate_file(path)


GOOD = '{"instruction": "Add", "input": "1 2", "output": "3"}'


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"instruction": "Add", "output": "3"', "invalid JSON"),
        ('{"input": "1 2", "output": "3"}', "missing field 'instruction'"),
        ('{"instruction": "Add", "input": "1 2", "output": "  "}', "empty 'output'"),
        ('{"instruction": "Add", "input": 12, "output": "3"}', "field 'input' must be a string, got int"),
        ('["not", "an", "object"]', "expected a JSON object"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}', "role 'robot'"),
        ('{"instruction": "Add", "inptu": "1 2", "output": "3"}', r"unknown key 'inptu' \(did you mean 'input'\?\)"),
        ('{"messages": [{"role": "user", "content": "1 2"}, {"role": "assistant", "content": "3"}], "output": "3"}',
         r"both chat 'messages' and Alpaca \['output'\]"),
    ],
)
def test_each_defect_names_file_and_line(tmp_path, bad_line, message):
    with pytest.raises(io.DataError, match=message) as err:
        _load(tmp_path, [GOOD, "", GOOD, bad_line])
    assert str(err.value).startswith(f"{tmp_path / 'train.jsonl'}:4: ")
    assert err.value.line == 4


def test_every_defect_of_a_file_is_reported_at_once_with_a_summary(tmp_path):
    bad = ['{"instruction": "Add", "output": "3"', '{"input": "1 2", "output": "3"}', '["x"]', '{"instruction": "A", "output": " "}']
    with pytest.raises(io.DataError) as err:
        _load(tmp_path, [GOOD, *bad, GOOD, bad[1]])
    path = tmp_path / "train.jsonl"
    lines = str(err.value).splitlines()
    assert lines[0] == f"5 defects in {path} (5 of 7 rows):"
    assert lines[1:] == [
        f"  {path}:2: invalid JSON: Expecting ',' delimiter (column 37)",
        f"  {path}:3: missing field 'instruction' (expected Alpaca 'instruction'/'input'/'output' or chat 'messages')",
        f"  {path}:4: expected a JSON object, got list",
        f"  {path}:5: empty 'output'",
        f"  {path}:7: missing field 'instruction' (expected Alpaca 'instruction'/'input'/'output' or chat 'messages')",
    ]


def test_the_listing_is_capped(tmp_path):
    with pytest.raises(io.DataError) as err:
        _load(tmp_path, ["[1]"] * 30)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("30 defects in") and len(lines) == 1 + io.MAX_DEFECTS_SHOWN + 1 and lines[-1] == "  ... and 10 more"


def test_encodings_and_folders(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n")  # UTF-8 with a byte-order mark: accepted
    assert len(validate_file(path)) == 1
    path.write_bytes(GOOD.encode() + b"\n" + '{"instruction": "Caf\u00e9", "output": "x"}'.encode("latin-1") + b"\n")
    with pytest.raises(io.DataError, match=r":2: not UTF-8 \(byte 0xe9 at column 21\); save the file as UTF-8"):
        validate_file(path)
    with pytest.raises(io.DataError, match="is a directory; expected a JSONL file"):
        validate_file(tmp_path)


def test_missing_and_empty_files_are_reported(tmp_path):
    with pytest.raises(io.DataError, match="file not found"):
        io.read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(io.DataError, match="no records"):
        io.read_jsonl(tmp_path / "empty.jsonl")


def test_chat_template_prompt_and_response_only_loss(tmp_path, tiny_llama):
    _, tokenizer = tiny_llama
    (example,) = _load(tmp_path, [GOOD])
    prompt = render_prompt(tokenizer, example.prompt_messages)
    assert prompt == "<|im_start|>user\nAdd\n\n1 2<|im_end|>\n<|im_start|>assistant\n"
    features, length = tokenize_example(tokenizer, example, max_length=256)
    assert length == len(features["input_ids"]) <= 256  # nothing cut
    labelled = [t for t, label in zip(features["input_ids"], features["labels"], strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(labelled) == "3<|im_end|>\n"
    everything, _ = tokenize_example(tokenizer, example, max_length=256, loss_on="all")
    assert everything["labels"] == everything["input_ids"]


def test_alpaca_fallback_without_a_chat_template(tmp_path, tiny_llama):
    _, tokenizer = tiny_llama
    tokenizer.chat_template = None
    (example,) = _load(tmp_path, [GOOD])
    prompt = render_prompt(tokenizer, example.prompt_messages)
    assert prompt.startswith("Below is an instruction") and prompt.endswith("### Response:\n")
    features, _ = tokenize_example(tokenizer, example, max_length=256)
    labelled = [t for t, label in zip(features["input_ids"], features["labels"], strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(labelled) == "3<|im_end|>"


def test_truncation_is_counted_and_targetless_examples_dropped(tmp_path, tiny_llama):
    """Cut from the right (the old way), a long prompt leaves no response token and the example is
    dropped; cut from the left (the default), the response survives and the prompt loses its start."""
    _, tokenizer = tiny_llama
    long_output = '{"instruction": "Say", "output": "' + "word " * 100 + '"}'
    long_prompt = '{"instruction": "' + "word " * 100 + '", "output": "yes"}'
    examples = _load(tmp_path, [GOOD, long_output, long_prompt])
    rows, report = tokenize_examples(tokenizer, examples, max_length=40, truncation="right")
    assert (report.examples, report.truncated, report.dropped_no_target) == (2, 2, 1)
    assert all(len(r["input_ids"]) <= 40 for r in rows)
    whole = [len(tokenize_example(tokenizer, e, 10**6)[0]["input_ids"]) for e in examples]
    assert report.longest == max(whole) > 40
    rows, report = tokenize_examples(tokenizer, examples, max_length=40)
    assert (report.examples, report.truncated, report.dropped_no_target) == (3, 2, 0)
    kept = rows[2]
    assert len(kept["input_ids"]) == 40 and tokenizer.decode([t for t, lab in zip(kept["input_ids"], kept["labels"], strict=True)
                                                              if lab != IGNORE_INDEX]).startswith("yes")
    rows, report = tokenize_examples(tokenizer, examples, max_length=4, truncation="right")
    assert rows == [] and report.dropped_no_target == 3


def test_a_file_that_loses_examples_stops_the_run_naming_the_length_that_keeps_them():
    from cofitune.data.sft import TokenizeReport, check_losses

    fine = TokenizeReport(examples=200, dropped_no_target=1, longest=90)  # 0.5%: within the default share
    lossy = TokenizeReport(examples=271, dropped_no_target=929, longest=212)
    check_losses({"a.jsonl": fine}, max_length=64, max_dropped_share=0.01)
    with pytest.raises(io.DataError, match=r"statute\.jsonl.*929 of 1200 examples.*training.max_length: 212 keeps every example"):
        check_losses({"a.jsonl": fine, "statute.jsonl": lossy}, max_length=192, max_dropped_share=0.01)
    check_losses({"statute.jsonl": lossy}, max_length=192, max_dropped_share=0.9)  # the user accepted the loss
    with pytest.raises(io.DataError, match="3 of 3 examples"):  # nothing left is never accepted
        check_losses({"a.jsonl": TokenizeReport(dropped_no_target=3, longest=30)}, max_length=8, max_dropped_share=1.0)


def test_metadata_keys_beside_an_example_are_accepted_and_unused(tmp_path):
    (example,) = _load(tmp_path, ['{"id": 7, "instruction": "Add", "input": "1 2", "output": "3", "text": "rendered"}'])
    assert example.response == "3" and "rendered" not in example.prompt_messages[0]["content"]
