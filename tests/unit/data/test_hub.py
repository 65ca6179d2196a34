"""Hub datasets (hf:org/name) from a test-made Hugging Face cache; one missing from it is named in the
pre-flight, with the command that downloads it."""

from __future__ import annotations

import pytest

from cofitune.data.hub import snapshot_folder
from cofitune.data.sft import validate_file
from cofitune.infra.io import DataError
from tests.unit.data.test_sources import REPO, preflight
from tests.unit.data.writers import COMMIT, hub_dataset

ROWS = [{"instruction": "Add", "input": "1 2", "output": "3"}, {"instruction": "Sub", "input": "3 1", "output": "2"}]


def test_a_cached_snapshot_is_found_and_read(hub_cache):
    snapshot = hub_dataset(hub_cache, "org/arith", ROWS)
    assert snapshot_folder("hf:org/arith", "hf:org/arith") == snapshot
    assert snapshot.name == COMMIT
    examples = validate_file("hf:org/arith")
    assert [(e.prompt_messages[0]["content"], e.response, e.source) for e in examples] == [
        ("Add\n\n1 2", "3", "hf:org/arith row 0"), ("Sub\n\n3 1", "2", "hf:org/arith row 1")]


def test_split_and_subset_are_the_entrys_options(hub_cache):
    hub_dataset(hub_cache, "org/arith", ROWS[:1], split="validation")
    (example,) = validate_file({"path": "hf:org/arith", "split": "validation"})
    assert example.source == "hf:org/arith (split validation) row 0"
    with pytest.raises(DataError, match=r"^hf:org/arith: not readable as a dataset \(ValueError: Unknown split \"train\""):
        validate_file("hf:org/arith")
    with pytest.raises(DataError, match=r"^hf:org/arith \(subset nope, split validation\): not readable as a dataset "
                                        r"\(ValueError: BuilderConfig 'nope' not found"):
        validate_file({"path": "hf:org/arith", "split": "validation", "subset": "nope"})


def test_a_dataset_not_in_the_cache_is_named_in_the_preflight_offline(hub_cache, monkeypatch):
    monkeypatch.chdir(REPO)
    hub_dataset(hub_cache, "org/arith", ROWS)
    assert preflight(["hf:org/arith"]) == []
    assert preflight(["hf:org/other", {"path": "hf:org/arith", "revision": "v2"}]) == [
        f"speciality.train[0]: hf:org/other: org/other (revision main) is not in the Hugging Face cache {hub_cache}; download it with "
        "`hf download --repo-type dataset org/other` or unset HF_HUB_OFFLINE",
        f"speciality.train[1]: hf:org/arith (revision v2): org/arith (revision v2) is not in the Hugging Face cache {hub_cache}; "
        "download it with `hf download --repo-type dataset org/arith --revision v2` or unset HF_HUB_OFFLINE",
    ]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    with pytest.raises(DataError, match=r"or unset HF_DATASETS_OFFLINE$"):
        validate_file("hf:org/other")


def test_a_hub_entry_listed_twice_is_named_and_a_bad_id_is_refused(hub_cache, monkeypatch):
    monkeypatch.chdir(REPO)
    hub_dataset(hub_cache, "org/arith", ROWS)
    assert preflight(["hf:org/arith", {"path": "hf:org/arith", "split": "train"}]) == [
        "speciality.train[1]: 'hf:org/arith (split train)' is already speciality.train[0]; list each file once"]
    with pytest.raises(DataError, match=r"^hf:arith: 'arith' is not a Hub dataset id \(hf:org/name\)$"):
        validate_file("hf:arith")
