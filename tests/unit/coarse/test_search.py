"""The pure tree search: frontiers, the greedy rule against an independent brute force, grid's argmax."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cofitune.coarse import search
from cofitune.coarse.search import Node, Score
from cofitune.models.regions import NAMED_RANGES


def N(named_range: str, module_set: str) -> Node:
    """A node by the paper's names of its range: h1..h3 (halves), q1..q4 (quarters)."""
    return Node(NAMED_RANGES[named_range], module_set)


NAME_OF = {value: name for name, value in NAMED_RANGES.items()}
ALL_NODES = [N(r, m) for r in ("h1", "h2", "h3", "q1", "q2", "q3", "q4") for m in ("mha+ffn", "mha", "ffn")]


def _key(node, scores):
    s = scores[node.id]
    return (-s.uni, -s.ver, node.layer_range[0], node.id)


def brute_force_greedy(scores, keep_parent):
    """The paper's rule, written out longhand: every path through the tree, then pick the one it takes."""
    halves = [N(h, "mha+ffn") for h in ("h1", "h2", "h3")]
    first = sorted(halves, key=lambda n: _key(n, scores))[0]
    quarters = {"h1": ["q1", "q2"], "h2": ["q2", "q3"], "h3": ["q3", "q4"]}[NAME_OF[first.layer_range]]
    second_pool = [N(q, "mha+ffn") for q in quarters] + ([first] if keep_parent else [])
    second = sorted(second_pool, key=lambda n: _key(n, scores))[0]
    third_pool = [Node(second.layer_range, m) for m in ("mha+ffn", "mha", "ffn")]
    third = sorted(third_pool, key=lambda n: _key(n, scores))[0]
    return [first, second, third]


score_values = st.floats(min_value=0, max_value=200, allow_nan=False).map(lambda x: round(x, 1))  # rounding makes ties common


@st.composite
def score_tables(draw):
    return {n.id: Score(uni=draw(score_values), ver=draw(st.sampled_from([10.0, 20.0, 30.0]))) for n in ALL_NODES}


@settings(max_examples=300, deadline=None)
@given(score_tables(), st.booleans())
def test_greedy_equals_brute_force(scores, keep_parent):
    assert search.run("greedy", scores, keep_parent) == brute_force_greedy(scores, keep_parent)


@settings(max_examples=300, deadline=None)
@given(score_tables())
def test_grid_picks_the_argmax(scores):
    (chosen,) = search.run("grid", scores)
    top = max(s.uni for s in scores.values())
    assert scores[chosen.id].uni == top
    tied = [n for n in ALL_NODES if scores[n.id].uni == top]
    assert scores[chosen.id].ver == max(scores[n.id].ver for n in tied)


def test_greedy_trains_seven_distinct_nodes_and_grid_21():
    scores = {n.id: Score(uni=i, ver=0) for i, n in enumerate(ALL_NODES)}
    chosen = search.run("greedy", scores)
    trained = {n for level in (1, 2, 3) for n in search.frontier("greedy", level, chosen[: level - 1])}
    assert len(trained) == 3 + 2 + 2  # the kept range's mha+ffn was trained already
    assert len(set(search.frontier("grid", 1, []))) == 21


def test_parent_kept_when_it_beats_both_quarters():
    scores = {n.id: Score(uni=0, ver=0) for n in ALL_NODES}
    scores[N("h2", "mha+ffn").id] = Score(uni=50, ver=0)
    scores[N("q2", "mha+ffn").id] = Score(uni=40, ver=0)
    chosen = search.run("greedy", scores, keep_parent=True)
    assert chosen[1] == N("h2", "mha+ffn")
    assert search.frontier("greedy", 3, chosen[:2]) == [N("h2", "mha"), N("h2", "ffn")]
    assert search.run("greedy", scores, keep_parent=False)[1] == N("q2", "mha+ffn")


def test_node_ids_match_candidate_ids_and_parse_back():
    assert N("q2", "ffn").id == "0.25-0.5_ffn"
    assert {n.id for n in ALL_NODES} == {f"{a:g}-{b:g}_{m}" for (a, b), m in itertools.product(
        search.SEVEN_RANGES, search.MODULE_SETS)}
    assert all(Node.from_id(n.id) == n for n in ALL_NODES)
    with pytest.raises(ValueError, match="soft-masked"):
        Node.from_id("0.25-0.5_ffn_softmask")


def test_bad_levels_and_missing_scores_fail_clearly():
    with pytest.raises(ValueError, match=r"levels 1\.\.3"):
        search.frontier("greedy", 4, [])
    with pytest.raises(ValueError, match="search mode"):
        search.n_levels("beam")
    with pytest.raises(KeyError, match="no score"):
        search.best([N("h1", "ffn")], {})
