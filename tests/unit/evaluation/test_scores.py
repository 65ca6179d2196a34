"""Scores: Spe./Ver./Uni. as METHOD.md defines them, and per-task intervals."""

from __future__ import annotations

import pytest

from cofitune.evaluation.scores import candidate_scores, item_scores_by_task, task_intervals


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


def test_replicated_models_are_resampled_over_seeds_then_items_as_an_independent_loop_computes():
    import numpy as np

    from cofitune.evaluation.scores import bootstrap

    spe_items = {"base": [0, 0, 1, 0], "m": [1, 1, 0, 1], "m_seed2": [0, 1, 0, 0]}
    ver_items = {"base": [1, 1, 0, 1, 1], "m": [1, 0, 0, 1, 0], "m_seed2": [1, 1, 1, 1, 0]}
    scores = {}
    for c in spe_items:
        scores[(c, "plain", "spe_t")] = dict(enumerate(spe_items[c]))
        scores[(c, "plain", "ver_t")] = dict(enumerate(ver_items[c]))
    replicates = {"base": ["base"], "m": ["m", "m_seed2"]}
    got = bootstrap(scores, ["base", "m", "m_seed2"], ["spe_t"], {"g": ["ver_t"]}, "plain", {"base": "base"},
                    n_resamples=200, seed=7, replicates=replicates)
    assert set(got) == {"base", "m"}

    rng = np.random.default_rng(7)  # the same draws, in the documented order: items per task (sorted), then seeds
    items = {"spe_t": rng.integers(0, 4, (200, 4)), "ver_t": rng.integers(0, 5, (200, 5))}
    seeds = rng.integers(0, 2, (200, 2))
    uni = {"base": [], "m": []}
    for r in range(200):
        def score(c, r=r):
            spe = 100 * np.mean([spe_items[c][i] for i in items["spe_t"][r]])
            ver = 100 * np.mean([ver_items[c][i] for i in items["ver_t"][r]])
            return spe + ver
        uni["base"].append(score("base"))
        uni["m"].append(np.mean([score(["m", "m_seed2"][j]) for j in seeds[r]]))
    for model in ("base", "m"):
        assert got[model]["uni"] == pytest.approx(tuple(np.percentile(uni[model], [2.5, 97.5])))


def test_a_model_of_one_seed_gets_the_same_interval_with_or_without_the_replicates_argument():
    from cofitune.evaluation.scores import bootstrap

    scores = {(c, "plain", t): {i: float((i + k) % 2) for i in range(6)} for k, c in enumerate(["base", "x"]) for t in ("s", "v")}
    plain = bootstrap(scores, ["base", "x"], ["s"], {"g": ["v"]}, "plain", {"base": "base"}, n_resamples=100)
    grouped = bootstrap(scores, ["base", "x"], ["s"], {"g": ["v"]}, "plain", {"base": "base"}, n_resamples=100,
                        replicates={"base": ["base"], "x": ["x"]})
    assert plain == grouped
