"""Every row format in every source type: through the pre-flight (`input_errors`) and `prepare_data`,
the same tokens as the Alpaca JSONL they spell, and one defect named at its line or row."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from cofitune.configuration.checks import input_errors
from cofitune.data.sft import tokenize_examples, validate_file
from cofitune.infra import io
from cofitune.infra.io import DataError
from cofitune.models.modeling import load_prepared
from cofitune.stages.data import prepare_data
from cofitune.stages.model import prepare_model
from tests.unit.data.writers import hub_dataset, tree, write_rows

REPO = Path(__file__).resolve().parents[3]


def _chat(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def _parts(user: list[str], answer: str) -> dict:
    text = [{"type": "text", "text": t} for t in user]
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": [{"type": "text", "text": answer}]}]}


def _sharegpt(user: str, answer: str, who: str = "gpt") -> dict:
    return {"conversations": [{"from": "human", "value": user}, {"from": who, "value": answer}]}


# format -> (entry options, two good rows spelling "Add 1 2" -> "3" and "Sub 3 1" -> "2", a defect row, its reason)
FORMATS = {
    "alpaca": ({}, [{"instruction": "Add", "input": "1 2", "output": "3"}, {"instruction": "Sub", "input": "3 1", "output": "2"}],
               {"instruction": "Mul", "input": "2 2", "output": " "}, "empty 'output'"),
    "messages": ({}, [_chat("Add\n\n1 2", "3"), _chat("Sub\n\n3 1", "2")],
                 {"messages": [{"role": "user", "content": "Mul"}, {"role": "user", "content": "2 2"}]},
                 "the last message must be the assistant's response"),
    "content parts": ({}, [_parts(["Add\n\n", "1 2"], "3"), _parts(["Sub", "\n\n3 1"], "2")],
                      {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a.png"}}]},
                                    {"role": "assistant", "content": [{"type": "text", "text": "4"}]}]},
                      "messages[0].content[0] is a part of type 'image_url'; only text parts ({'type': 'text', 'text': ...}) "
                      "can be trained on"),
    "sharegpt": ({}, [_sharegpt("Add\n\n1 2", "3"), _sharegpt("Sub\n\n3 1", "2")], _sharegpt("Mul\n\n2 2", "4", who="bot"),
                 "conversations[1].from 'bot' is not one of ('human', 'user', 'gpt', 'assistant', 'system')"),
    "columns": ({"columns": {"instruction": "q", "input": "ctx", "output": "a"}},
                [{"q": "Add", "ctx": "1 2", "a": "3"}, {"q": "Sub", "ctx": "3 1", "a": "2"}], {"q": "Mul", "ctx": "2 2", "a": ""},
                "empty 'output'"),
}
KINDS = ("jsonl", "json", "parquet", "csv", "arrow", "hub")
FLAT = ("alpaca", "columns")  # a CSV table holds flat rows only
CASES = [(fmt, kind) for fmt in FORMATS for kind in KINDS if kind != "csv" or fmt in FLAT]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "model"
    prepare_model({"name_or_path": "builtin:tiny-llama"}, folder, seed=0)
    return folder


def _source(fmt: str, kind: str, rows: list[dict], folder: Path, cache: Path) -> tuple[object, str, str]:
    """The config entry for `rows` (a file in `folder`, or a Hub dataset named after it), its label,
    and where row 2 (the third) is named."""
    options, *_ = FORMATS[fmt]
    if kind == "hub":
        repo = f"org/{fmt.replace(' ', '-')}-{folder.name}"
        hub_dataset(cache, repo, rows)
        path = label = f"hf:{repo}"
    else:
        path = label = str(write_rows(kind, rows, folder))
    third = f"{path}:3" if kind == "jsonl" else f"{label} row 2"
    return ({"path": path, **options} if options else path), label, third


def preflight(entries: list) -> list[str]:
    """The pre-flight's input errors for the smoke preset with `entries` as speciality.train."""
    from snakemake.utils import validate

    config = io.read_yaml(REPO / "workflow" / "presets" / "smoke.yaml")
    config["speciality"]["train"] = copy.deepcopy(entries)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    errors, _ = input_errors(config)
    return errors


@pytest.mark.parametrize(("fmt", "kind"), CASES)
def test_each_format_in_each_source_is_checked_and_tokenized(fmt, kind, tmp_path, hub_cache, model_dir, monkeypatch):
    monkeypatch.chdir(REPO)  # the preset's own files are relative to the project
    _, good, bad, reason = FORMATS[fmt]
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    entry, label, _ = _source(fmt, kind, good, tmp_path / "good", hub_cache)
    before = tree(tmp_path / "good") + tree(hub_cache)  # reading writes nothing beside the data or into the Hub cache
    assert preflight([entry]) == []
    report = prepare_data(model_dir=model_dir, train_files=[entry], max_length=64, loss_on="response", out_dir=tmp_path / "out",
                          report_file=tmp_path / "report.json")
    assert report.examples == 2 and io.read_json(tmp_path / "report.json")["files"] == [label]
    _, tokenizer = load_prepared(model_dir)
    reference, _ = tokenize_examples(tokenizer, validate_file(write_rows("jsonl", FORMATS["alpaca"][1], tmp_path, "ref")), 64)
    assert io.read_dataset(tmp_path / "out").to_list() == reference  # the same tokens as the Alpaca rows they spell
    assert tree(tmp_path / "good") + tree(hub_cache) == before

    bad_entry, _, third = _source(fmt, kind, [*good, bad], tmp_path / "bad", hub_cache)
    expected = f"{third}: {reason}" + ("" if kind == "jsonl" else " (rows counted from 0)")
    assert preflight([entry, bad_entry]) == [f"speciality.train[1]: {expected}"]
    with pytest.raises(DataError) as err:
        prepare_data(model_dir=model_dir, train_files=[bad_entry], max_length=64, loss_on="response", out_dir=tmp_path / "out2",
                     report_file=tmp_path / "report2.json")
    assert str(err.value) == expected


def test_every_defect_of_a_table_is_listed_with_its_row(tmp_path):
    rows = [{"instruction": "Add", "output": "3"}, {"instruction": "Add", "inptu": "1 2", "output": "3"}, {"instruction": " ", "output": "3"}]
    path = write_rows("parquet", rows, tmp_path)
    with pytest.raises(DataError) as err:
        validate_file(path)
    assert str(err.value).splitlines() == [
        f"2 defects in {path} (2 of 3 rows, counted from 0):",
        f"  {path} row 1: unknown key 'inptu' (did you mean 'input'?); rows are Alpaca ['instruction', 'input', 'output'] or chat "
        "['messages'] or ShareGPT ['conversations'], with optional ['id', 'text', 'source', 'category', 'metadata'] (not used); "
        "other names can be mapped with the entry's `columns`",
        f"  {path} row 2: empty 'instruction'",
    ]


def test_a_csv_cell_is_text_as_written(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('instruction,input,output\nRepeat,,NA\n"Two\nlines",007,12\n', encoding="utf-8")
    first, second = validate_file(path)
    assert (first.prompt_messages[0]["content"], first.response) == ("Repeat", "NA")
    assert (second.prompt_messages[0]["content"], second.response, second.source) == ("Two\nlines\n\n007", "12", f"{path} row 1")


def test_a_json_file_of_json_lines_is_read_line_by_line(tmp_path):
    path = write_rows("jsonl", FORMATS["alpaca"][1], tmp_path)
    path = path.rename(tmp_path / "train.json")
    assert [e.source for e in validate_file(path)] == [f"{path}:1", f"{path}:2"]
    path.write_text('[{"instruction": "Add", "output": "3"},\n {"instruction": "Add" "output": "3"}]')
    with pytest.raises(DataError, match=rf"^{path}:2: invalid JSON: Expecting ',' delimiter \(column 24\)$"):
        validate_file(path)


def test_a_parquet_file_is_never_told_to_save_as_utf8(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 cut short \xe9")
    with pytest.raises(DataError) as err:
        validate_file(path)
    assert str(err.value).startswith(f"{path}: not readable as a parquet file (") and "UTF-8" not in str(err.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "a.jsonl", "split": "test"}, "a.jsonl: ['split'] apply to Hub datasets (hf:org/name) only; a local file has one split"),
        ({"path": "a.jsonl", "splt": "x"}, "a.jsonl: unknown option(s) ['splt']; known: ['path', 'split', 'revision', 'subset', "
                                           "'columns', 'format']"),
        ({"path": "a.jsonl", "columns": {"prompt": "q"}}, "a.jsonl: columns: ['prompt'] are not row keys; map onto ['instruction', "
                                                          "'input', 'output', 'messages', 'conversations', 'system']"),
        ({"path": "a.jsonl", "format": "openai"}, "a.jsonl: format 'openai' is not one of ['auto', 'alpaca', 'messages', 'sharegpt']"),
    ],
)
def test_a_bad_entry_option_is_named(entry, message):
    with pytest.raises(DataError) as err:
        validate_file(entry)
    assert str(err.value) == message


def test_a_column_mapping_and_an_explicit_format(tmp_path):
    rows = [{"question": "Add 1 2", "conversation": [{"from": "user", "value": "Add 1 2"}, {"from": "assistant", "value": "3"}]}]
    path = write_rows("jsonl", rows, tmp_path)
    with pytest.raises(DataError, match=rf"^{path}:1: unknown key 'question'"):
        validate_file({"path": str(path), "columns": {"conversations": "conversation"}, "format": "sharegpt"})
    (example,) = validate_file({"path": str(path), "columns": {"conversations": "conversation", "system": "question"}})
    assert example.messages == ({"role": "system", "content": "Add 1 2"}, {"role": "user", "content": "Add 1 2"},
                                {"role": "assistant", "content": "3"})
    with pytest.raises(DataError, match=rf"^{path}:1: missing field 'messages' \(the entry's format is messages\)$"):
        validate_file({"path": str(path), "format": "messages"})
    with pytest.raises(DataError, match=rf"^{path}:1: missing column 'convo' \(mapped onto 'conversations' by columns\)$"):
        validate_file({"path": str(path), "columns": {"conversations": "convo"}})


def test_prepare_data_puts_the_loss_on_every_assistant_turn(tmp_path, model_dir):
    turns = [{"from": "human", "value": "Add 1 2"}, {"from": "gpt", "value": "3"}, {"from": "human", "value": "Times 4"},
             {"from": "gpt", "value": "12"}]
    path = write_rows("parquet", [{"conversations": turns}], tmp_path)
    report = prepare_data(model_dir=model_dir, train_files=[str(path)], max_length=64, loss_on="assistant", out_dir=tmp_path / "out",
                          report_file=tmp_path / "report.json")
    _, tokenizer = load_prepared(model_dir)
    ((row,),) = [io.read_dataset(tmp_path / "out").to_list()]
    labelled = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tokenizer.decode(labelled) == "3<|im_end|>\n12<|im_end|>\n" and report.target_tokens == len(labelled)
    assert io.read_json(tmp_path / "report.json")["loss_on"] == "assistant"
