"""The data generators: determinism, well-formed rows, no leakage, and the shipped files in sync."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cofitune.datagen import (
    GROUPS,
    STATUTE_TEXT,
    TASKS,
    checksum_table,
    default_datasets,
    file_checksums,
    importance_rows,
    normalise,
    sft_text,
    speciality_split,
    statute_fee,
    statute_penalty,
    versatility_task,
    write_default_data,
)
from cofitune.infra import io

DATA = Path(__file__).resolve().parents[2] / "data"
SFT_KEYS = ("instruction", "input", "output")
MC_KEYS = ("id", "question", "choices", "answer")


@pytest.fixture(scope="module")
def datasets() -> dict[str, list[dict]]:
    return {name: rows for name, (_, rows) in default_datasets(1234).items()}


def _sft_sets(datasets: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {k: v for k, v in datasets.items() if k not in TASKS}


# --- determinism ---------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["arith", "statute"])
def test_speciality_deterministic_per_seed(task: str) -> None:
    assert speciality_split(task, 7, 40, 10) == speciality_split(task, 7, 40, 10)
    assert speciality_split(task, 7, 40, 10) != speciality_split(task, 8, 40, 10)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_versatility_deterministic_per_seed(task: str) -> None:
    assert versatility_task(task, 7) == versatility_task(task, 7)
    assert versatility_task(task, 7) != versatility_task(task, 8)


def test_importance_deterministic_per_seed() -> None:
    assert importance_rows(7) == importance_rows(7)
    assert importance_rows(7) != importance_rows(8)


# --- well-formed rows ----------------------------------------------------------------------

def test_sizes(datasets: dict[str, list[dict]]) -> None:
    for task in ("arith", "statute"):
        assert len(datasets[f"{task}_train"]) == 1200
        assert len(datasets[f"{task}_test"]) == 250
    assert len(datasets["importance"]) == 800
    for task in TASKS:
        assert 150 <= len(datasets[task]) <= 200, task
    assert sorted(t for pair in GROUPS.values() for t in pair) == sorted(TASKS)


def test_sft_rows_well_formed(datasets: dict[str, list[dict]]) -> None:
    for name, rows in _sft_sets(datasets).items():
        for row in rows:
            assert tuple(row) == SFT_KEYS, name
            assert all(isinstance(row[k], str) for k in SFT_KEYS), name
            assert row["instruction"].strip() and row["output"].strip(), name
            assert row["output"] == row["output"].strip() and len(row["output"].split()) <= 4, row


def test_mc_rows_well_formed(datasets: dict[str, list[dict]]) -> None:
    for task in TASKS:
        for i, row in enumerate(datasets[task]):
            assert tuple(row) == MC_KEYS
            assert row["id"] == f"{task}-{i:04d}"
            assert isinstance(row["question"], str) and row["question"].strip()
            assert len(row["question"].split()) <= 45  # well under ~60 tokens
            choices = row["choices"]
            assert len(choices) == 4 and all(isinstance(c, str) and c.strip() for c in choices)
            assert len({normalise(c) for c in choices}) == 4, row
            assert isinstance(row["answer"], int) and 0 <= row["answer"] < 4


def test_answer_positions_balanced(datasets: dict[str, list[dict]]) -> None:
    for task in TASKS:
        counts = Counter(row["answer"] for row in datasets[task])
        assert max(counts.values()) - min(counts.values()) <= 1, (task, counts)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_any_seed_gives_valid_balanced_items(seed: int) -> None:
    for task in TASKS:
        rows = versatility_task(task, seed)
        assert len({normalise(r["question"]) for r in rows}) == len(rows) >= 150
        counts = Counter(r["answer"] for r in rows)
        assert max(counts.values()) - min(counts.values()) <= 1


def test_inline_options_match_choice_order(datasets: dict[str, list[dict]]) -> None:
    for task in TASKS:
        for row in datasets[task]:
            if ": " in row["question"] and row["question"].endswith(f" or {row['choices'][-1]}?"):
                assert ", ".join(row["choices"][:-1]) in row["question"], row


def test_arith_outputs_are_integers(datasets: dict[str, list[dict]]) -> None:
    for row in datasets["arith_train"] + datasets["arith_test"]:
        assert re.fullmatch(r"\d+", row["output"]), row


def test_statute_labels_and_text(datasets: dict[str, list[dict]]) -> None:
    assert len(STATUTE_TEXT.split()) < 80
    allowed = {"liable", "not liable", "exempt"} | {str(n) for n in range(1, 61)}
    outputs = Counter(r["output"] for r in datasets["statute_train"] + datasets["statute_test"])
    assert set(outputs) <= allowed
    assert min(outputs[label] for label in ("liable", "not liable", "exempt", "60")) >= 50
    assert all(STATUTE_TEXT in r["instruction"] for r in datasets["statute_train"])


def test_statute_rules_at_the_boundaries() -> None:
    assert statute_fee("yacht", 4, 3) == "exempt"
    assert statute_fee("yacht", 5, 3) == "18"
    assert statute_fee("lifeboat", 30, 3) == "exempt"
    assert statute_fee("barge", 20, 2) == "12"
    assert statute_fee("barge", 21, 2) == "20"
    assert statute_fee("barge", 21, 6) == "60"
    assert statute_fee("barge", 21, 9) == "60"
    assert statute_penalty(permit=False, storm=False) == "liable"
    assert statute_penalty(permit=False, storm=True) == "not liable"
    assert statute_penalty(permit=True, storm=False) == "not liable"


# --- uniqueness and leakage ----------------------------------------------------------------

def test_items_unique_within_each_set(datasets: dict[str, list[dict]]) -> None:
    for name, rows in _sft_sets(datasets).items():
        assert len({sft_text(r) for r in rows}) == len(rows), name
    questions = [normalise(r["question"]) for task in TASKS for r in datasets[task]]
    assert len(set(questions)) == len(questions)


@pytest.mark.parametrize("task", ["arith", "statute"])
def test_train_test_disjoint(datasets: dict[str, list[dict]], task: str) -> None:
    train, test = datasets[f"{task}_train"], datasets[f"{task}_test"]
    assert not {sft_text(r) for r in train} & {sft_text(r) for r in test}
    train_inputs = {normalise(r["input"]) for r in train}
    assert not train_inputs & {normalise(r["input"]) for r in test}


def test_importance_disjoint_from_speciality(datasets: dict[str, list[dict]]) -> None:
    importance = {sft_text(r) for r in datasets["importance"]}
    for name in ("arith_train", "arith_test", "statute_train", "statute_test"):
        assert not importance & {sft_text(r) for r in datasets[name]}, name


def test_versatility_questions_absent_from_sft_data(datasets: dict[str, list[dict]]) -> None:
    # One haystack: normalised texts hold only [a-z0-9 ], so the '|' separator cannot join two rows.
    texts = [sft_text(r) for rows in _sft_sets(datasets).values() for r in rows]
    haystack = "|" + "|".join(texts) + "|"
    for task in TASKS:
        for row in datasets[task]:
            assert normalise(row["question"]) not in haystack, row


# --- shipped files -------------------------------------------------------------------------

def test_committed_data_matches_generator(tmp_path: Path) -> None:
    written = write_default_data(tmp_path, seed=1234)
    generated = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in written.values()}
    committed = {p.relative_to(DATA).as_posix(): p.read_bytes() for p in DATA.rglob("*.jsonl")}
    assert sorted(committed) == sorted(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert not stale, f"run `python -m cofitune.datagen` and update DATASHEET.md: {stale}"


def test_committed_data_reads_back() -> None:
    for name, (rel, rows) in default_datasets(1234).items():
        assert [row for _, row in io.read_jsonl(DATA / rel)] == rows, name


def test_datasheet_checksums_match_files() -> None:
    sheet = (DATA / "DATASHEET.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"`([\w/.-]+\.jsonl)`[^`\n]*`([0-9a-f]{64})`", sheet))
    actual = file_checksums(DATA, DATA.rglob("*.jsonl"))
    assert listed == actual
    assert checksum_table(DATA) in sheet  # row counts and sizes too
