"""A level's decision with its confidence: probability of being best, difference to the leader
with its interval, and the tie band that prefers the smaller region only when the rule says so."""

from __future__ import annotations

import numpy as np
import pytest

from cofitune.coarse.decision import Confidence, choose, level_confidence
from cofitune.evaluation.scores import resampled_scores


def item_scores(per_node: dict[str, list[float]]):
    return {(node, fmt, task): dict(enumerate(values)) for node, values in per_node.items()
            for fmt, task in (("plain", "s"), ("plain", "v"))}


def confidence_of(per_node: dict[str, list[float]], n_resamples=500):
    nodes = list(per_node)
    _, spe, ver = resampled_scores(item_scores(per_node), nodes, ["s"], {"g": ["v"]}, "plain", n_resamples=n_resamples, seed=3)
    uni = [200.0 * float(np.mean(per_node[n])) for n in nodes]
    leader = nodes[int(np.argmax(uni))]
    return level_confidence(nodes, uni, spe + ver, leader), leader


def test_a_node_better_on_every_item_is_best_in_every_resample():
    confidence, leader = confidence_of({"a": [1.0] * 10, "b": [0.0] * 10, "c": [0.5] * 10})
    assert leader == "a" and confidence["a"].p_best == 1.0 and confidence["b"].p_best == confidence["c"].p_best == 0.0
    assert confidence["b"].diff == -200.0 and confidence["b"].diff_hi < 0


@pytest.mark.parametrize("n", [2, 3, 5])
def test_identical_nodes_share_the_probability_evenly(n):
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    confidence, _ = confidence_of({f"n{i}": values for i in range(n)})
    assert all(c.p_best == pytest.approx(1.0 / n) for c in confidence.values())
    assert all(c.diff == c.diff_lo == c.diff_hi == 0.0 for c in confidence.values())


def test_the_difference_interval_is_the_percentile_interval_of_paired_differences():
    rng = np.random.default_rng(0)
    per_node = {"a": rng.integers(0, 2, 30).astype(float).tolist(), "b": rng.integers(0, 2, 30).astype(float).tolist()}
    nodes = list(per_node)
    _, spe, ver = resampled_scores(item_scores(per_node), nodes, ["s"], {"g": ["v"]}, "plain", n_resamples=400, seed=3)
    uni = spe + ver
    got = level_confidence(nodes, [200.0 * np.mean(per_node[n]) for n in nodes], uni, leader="a")
    assert (got["b"].diff_lo, got["b"].diff_hi) == pytest.approx(tuple(np.percentile(uni[1] - uni[0], [2.5, 97.5])))
    assert got["a"].p_best + got["b"].p_best == pytest.approx(1.0)


PARAMS = {"big": 2_000, "small": 1_000, "third": 1_500}


@pytest.mark.parametrize(
    ("small", "tie_band", "chosen"),
    [
        (Confidence("small", 0.4, -2.0, -8.0, 4.0), 5.0, "small"),   # interval contains 0, within the band: the smaller
        (Confidence("small", 0.3, -6.0, -12.0, 1.0), 5.0, "big"),    # beyond the band
        (Confidence("small", 0.05, -2.0, -3.5, -0.5), 5.0, "big"),   # interval excludes 0: distinguishable
        (Confidence("small", 0.4, -2.0, -8.0, 4.0), None, "big"),    # no tie band: the leader
        (Confidence("small", 0.4, -2.0, -8.0, 4.0), 0.0, "big"),     # band 0: only exact ties count
    ],
)
def test_the_tie_band_prefers_the_smaller_region_exactly_when_the_rule_says(small, tie_band, chosen):
    confidence = {"big": Confidence("big", 0.6, 0.0, 0.0, 0.0), "small": small, "third": Confidence("third", 0.0, -20.0, -30.0, -10.0)}
    node, reason = choose(["big", "small", "third"], confidence, PARAMS, tie_band)
    assert node == chosen
    assert ("fewer trainable parameters (1,000 vs 2,000)" in reason) == (chosen == "small")


def test_a_clear_leader_is_called_so():
    confidence = {"big": Confidence("big", 0.97, 0.0, 0.0, 0.0), "small": Confidence("small", 0.03, -9.0, -15.0, -2.0)}
    assert choose(["big", "small"], confidence, PARAMS, 5.0) == ("big", "leader big: clearly best (P(best) 0.97)")
