"""Item splits: disjoint, sized as asked, stable when unrelated settings change, and honest about
the winner's curse: on contenders equal in expectation, the one chosen on select looks better there
than it is, and its confirm score does not."""

from __future__ import annotations

import numpy as np
import pytest

from cofitune.evaluation.splits import (
    CONFIRM,
    SELECT,
    SplitSizes,
    capped_tasks,
    documents_for,
    size_problem,
    sizes_problem,
    split_counts,
    split_documents,
    split_item_counts,
)


@pytest.mark.parametrize("sizes", [SplitSizes(40, 100), SplitSizes(0.3, None), SplitSizes(None, 50), SplitSizes(1, 1)])
def test_the_splits_are_disjoint_and_sized_as_asked(sizes):
    docs = split_documents("vk_world", 180, sizes, seed=1234)
    select, confirm = set(docs[SELECT]), set(docs[CONFIRM])
    assert not select & confirm and select | confirm <= set(range(180))
    assert (len(select), len(confirm)) == split_counts(180, sizes)
    assert docs[SELECT] == sorted(docs[SELECT]) and docs[CONFIRM] == sorted(docs[CONFIRM])  # lm-eval needs them sorted


def test_sizes_counts_fractions_nulls_and_caps():
    assert split_counts(180, SplitSizes(40, 100)) == (40, 100)
    assert split_counts(180, SplitSizes(0.3, None)) == (54, 126)  # null: every item select does not take
    assert split_counts(180, SplitSizes(None, 100)) == (80, 100)
    assert split_counts(120, SplitSizes(40, 100)) == (40, 80)  # too small a task: select keeps its size
    assert split_counts(30, SplitSizes(40, 100)) == (30, 0)
    assert capped_tasks({"big": 180, "small": 120}, SplitSizes(40, 100)) == ["small"]
    assert capped_tasks({"t": 180}, SplitSizes(0.3, None)) == []


def test_a_task_without_items_in_a_split_is_refused_by_name():
    with pytest.raises(ValueError, match=r"no confirm items left in tiny \(30 items\)"):
        documents_for(CONFIRM, {"tiny": 30, "big": 500}, SplitSizes(40, 100), seed=1)
    with pytest.raises(ValueError, match="unknown split"):
        documents_for("test", {"t": 10}, SplitSizes(4, 4), seed=1)


def test_the_split_of_a_task_depends_on_the_seed_and_its_name_only():
    sizes = SplitSizes(40, 100)
    alone = documents_for(SELECT, {"vk_world": 180}, sizes, seed=1234)["vk_world"]
    among_others = documents_for(SELECT, {"arith": 250, "vk_world": 180, "zzz": 99}, sizes, seed=1234)["vk_world"]
    assert alone == among_others
    assert split_documents("vk_world", 180, sizes, 1235)[SELECT] != alone  # another seed: another split
    assert split_documents("vk_science", 180, sizes, 1234)[SELECT] != alone  # another task: another order


def test_changing_one_split_size_changes_the_other_split_not_at_all():
    small, large = split_documents("t", 250, SplitSizes(40, 100), 7), split_documents("t", 250, SplitSizes(40, 150), 7)
    assert small[SELECT] == large[SELECT] and set(small[CONFIRM]) < set(large[CONFIRM])
    more_select = split_documents("t", 250, SplitSizes(60, 100), 7)
    assert more_select[CONFIRM] == small[CONFIRM] and set(small[SELECT]) < set(more_select[SELECT])


def test_size_problems_name_the_key():
    assert size_problem("evaluation.select", 40) is None and size_problem("evaluation.select", 0.5) is None
    assert size_problem("evaluation.confirm", None) is None
    for bad in (0, -3, 1.5, 0.0, True, "10"):
        assert size_problem("evaluation.confirm", bad).startswith(f"evaluation.confirm: {bad!r} is neither")
    assert "both null" in sizes_problem(SplitSizes(None, None)) and sizes_problem(SplitSizes(None, 5)) is None


def test_item_counts_per_split_count_each_item_once_over_formats():
    rows = [{"split": s, "task": "t", "doc_id": i, "format": f} for s, ids in ((SELECT, range(3)), (CONFIRM, range(3, 8)))
            for i in ids for f in ("plain", "chat")]
    assert split_item_counts(rows) == {SELECT: {"t": 3}, CONFIRM: {"t": 5}}


def test_the_node_chosen_on_select_is_optimistic_there_and_honest_on_confirm():
    """Seven contenders equal in expectation (each item right with probability 0.5), one task of 180
    items split 40 / 100: the search keeps the best on select. Over 2,000 simulated searches its
    select score overstates its true 50 by several points; its confirm score does not."""
    rng = np.random.default_rng(0)
    docs = split_documents("t", 180, SplitSizes(40, 100), seed=1234)
    select_of_chosen, confirm_of_chosen = [], []
    for _ in range(2000):
        items = rng.random((7, 180)) < 0.5  # contender x item: right or wrong
        select = 100.0 * items[:, docs[SELECT]].mean(axis=1)
        chosen = int(np.argmax(select))
        select_of_chosen.append(select[chosen])
        confirm_of_chosen.append(100.0 * items[chosen, docs[CONFIRM]].mean())
    optimism, se = np.mean(select_of_chosen) - 50.0, np.std(confirm_of_chosen) / np.sqrt(2000)
    assert optimism > 8.0  # the expected maximum of 7 means of 40 coin flips: about +10.3
    assert abs(np.mean(confirm_of_chosen) - 50.0) < 4 * se
