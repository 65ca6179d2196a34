"""Coarse level: the tree search over regions (METHOD.md section 3). Pure: scores in, nodes out.

greedy (7 trainings instead of 21):
  level 1  the three halves [0,.5) [.25,.75) [.5,1), training mha+ffn; keep the best;
  level 2  the two quarters inside it, mha+ffn; keep the best (the parent too, if it beats
           both and `keep_parent` is on: an improvement over the paper);
  level 3  inside the kept range, mha and ffn alone; keep the best of the three module sets.
grid: the 7 ranges x 3 module sets in one level; keep the best.
The CoFiTune model is the chosen region trained with the soft-mask.

Ranking: higher Uni. first; ties go to higher Ver. (the point of the method is to keep it),
then to the smaller layer range start, then to the node id - deterministic for any table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cofitune.methods.candidates import LayerRange, parse_region_id, region_id
from cofitune.models.regions import NAMED_RANGES

HALVES = tuple(NAMED_RANGES[h] for h in ("h1", "h2", "h3"))
QUARTERS_OF = {NAMED_RANGES[h]: (NAMED_RANGES[a], NAMED_RANGES[b]) for h, a, b in (("h1", "q1", "q2"), ("h2", "q2", "q3"), ("h3", "q3", "q4"))}
SEVEN_RANGES = (*HALVES, *(NAMED_RANGES[q] for q in ("q1", "q2", "q3", "q4")))
MODULE_SETS = ("mha+ffn", "mha", "ffn")
MODES = ("greedy", "grid")


@dataclass(frozen=True, order=True)
class Node:
    layer_range: LayerRange  # fractions of the depth, e.g. (0.25, 0.5)
    module_set: str

    @property
    def id(self) -> str:
        return region_id(self.layer_range, self.module_set)

    @classmethod
    def from_id(cls, node_id: str) -> Node:
        layer_range, module_set, softmask = parse_region_id(node_id)
        if softmask:
            raise ValueError(f"{node_id!r} is a soft-masked candidate, not a search node")
        return cls(layer_range, module_set)


@dataclass(frozen=True)
class Score:
    uni: float
    ver: float


def n_levels(mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"search mode must be one of {MODES}, got {mode!r}")
    return 3 if mode == "greedy" else 1


def rank_key(node: Node, score: Score) -> tuple:
    return (-score.uni, -score.ver, node.layer_range[0], node.id)


def best(nodes: Sequence[Node], scores: Mapping[str, Score]) -> Node:
    missing = [n.id for n in nodes if n.id not in scores]
    if missing:
        raise KeyError(f"no score for search node(s) {missing}")
    return min(nodes, key=lambda n: rank_key(n, scores[n.id]))


def frontier(mode: str, level: int, chosen: Sequence[Node]) -> list[Node]:
    """The nodes of `level` (1-based), given the nodes chosen at the levels before it."""
    if not 1 <= level <= n_levels(mode):
        raise ValueError(f"{mode} search has levels 1..{n_levels(mode)}, not {level}")
    if mode == "grid":
        return [Node(r, m) for r in SEVEN_RANGES for m in MODULE_SETS]
    if level == 1:
        return [Node(h, "mha+ffn") for h in HALVES]
    if level == 2:
        return [Node(q, "mha+ffn") for q in QUARTERS_OF[chosen[0].layer_range]]
    kept = chosen[1].layer_range
    return [Node(kept, m) for m in ("mha", "ffn")]


def contenders(mode: str, level: int, chosen: Sequence[Node], keep_parent: bool = True) -> list[Node]:
    """What the choice at `level` is made among: its frontier, plus the parent where it competes."""
    nodes = frontier(mode, level, chosen)
    if mode == "greedy" and level == 2 and keep_parent:
        nodes = [chosen[0], *nodes]
    if mode == "greedy" and level == 3:
        nodes = [chosen[1], *nodes]  # mha+ffn in the kept range was trained at level 1 or 2
    return nodes


def run(mode: str, scores: Mapping[str, Score], keep_parent: bool = True) -> list[Node]:
    """The node chosen at each level, replaying the search over a complete score table."""
    chosen: list[Node] = []
    for level in range(1, n_levels(mode) + 1):
        chosen.append(best(contenders(mode, level, chosen, keep_parent), scores))
    return chosen
