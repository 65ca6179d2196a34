"""Scores: Spe./Ver./Uni. as METHOD.md defines them, and per-task intervals."""

from __future__ import annotations

import pytest

from cofitune.scores import candidate_scores, item_scores_by_task, task_intervals


def test_scores_follow_the_method_definitions():
    rows = [
        {"format": "plain", "task": "spe_a", "value": 0.8},
        {"format": "plain", "task": "spe_b", "value": 0.4},
        {"format": "plain", "task": "k1", "value": 0.5},
        {"format": "plain", "task": "k2", "value": 0.7},
        {"format": "plain", "task": "r1", "value": 0.3},
        {"format": "chat", "task": "k1", "value": 0.1},
        {"format": "chat", "task": "k2", "value": 0.1},
        {"format": "chat", "task": "r1", "value": 0.4},
    ]
    groups = {"knowledge": ["k1", "k2"], "reasoning": ["r1"]}
    scores = candidate_scores(rows, ["spe_a", "spe_b"], groups, ["plain", "chat"], rank_format="plain")
    assert scores["spe"] == pytest.approx(60.0)
    assert scores["group_plain_knowledge"] == pytest.approx(60.0)
    assert scores["ver_plain"] == pytest.approx(45.0)  # mean of group means, not of tasks
    assert scores["ver_chat"] == pytest.approx(25.0)
    assert scores["ver"] == scores["ver_plain"] and scores["uni"] == pytest.approx(105.0)


def test_task_intervals_contain_the_score_and_narrow_with_more_items():
    rows = [{"candidate": "base", "format": "plain", "task": "t", "doc_id": i, "score": float(i % 4 == 0)} for i in range(40)]
    rows += [{"candidate": "base", "format": "plain", "task": "big", "doc_id": i, "score": float(i % 4 == 0)} for i in range(400)]
    rows += [{"candidate": "base", "format": "chat", "task": "t", "doc_id": i, "score": 1.0} for i in range(40)]
    intervals = task_intervals(item_scores_by_task(rows))
    score, low, high, items = intervals[("base", "plain", "t")]
    assert (score, items) == (25.0, 40) and low < score < high
    big = intervals[("base", "plain", "big")]
    assert big[0] == 25.0 and big[2] - big[1] < (high - low) / 2  # ~1/sqrt(10) of the width
    assert intervals[("base", "chat", "t")] == (100.0, 100.0, 100.0, 40)
    assert task_intervals(item_scores_by_task(rows)) == intervals  # seeded
