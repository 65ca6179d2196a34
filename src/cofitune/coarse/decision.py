"""A search level's decision with its confidence.

For each contender: the probability that it is the best (the share of paired resamples, over items
and seeds, in which its Uni. is the highest; a resample in which several tie counts 1/k for each),
and its Uni. difference to the leader (the point-estimate best) with a percentile interval.

The tie band (`search.tie_band`, Uni. points): a contender is indistinguishable from the leader
when its difference interval contains 0 *and* it trails by at most the band. The interval alone
would call almost everything a tie at 20 items per task; the band alone would ignore how noisy the
difference is. Among the leader and its indistinguishable contenders the search keeps the one that
trains the fewest parameters (ties: the leader's order), and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confidence:
    node: str
    p_best: float
    diff: float  # point Uni. minus the leader's (0 for the leader)
    diff_lo: float
    diff_hi: float


def level_confidence(nodes: Sequence[str], uni: Sequence[float], resampled_uni: np.ndarray, leader: str,
                     level: float = 0.95) -> dict[str, Confidence]:
    """`resampled_uni`: (nodes, resamples), paired across nodes; `uni`: the point estimates."""
    top = resampled_uni.max(axis=0)
    at_top = np.isclose(resampled_uni, top, rtol=0.0, atol=1e-9)
    p_best = (at_top / at_top.sum(axis=0)).mean(axis=1)
    lead = nodes.index(leader)
    tail = (1.0 - level) / 2.0 * 100.0
    out = {}
    for i, node in enumerate(nodes):
        low, high = np.percentile(resampled_uni[i] - resampled_uni[lead], [tail, 100.0 - tail])
        out[node] = Confidence(node, float(p_best[i]), float(uni[i] - uni[lead]), float(low), float(high))
    return out


def choose(ranked: Sequence[str], confidence: Mapping[str, Confidence], trainable_params: Mapping[str, int],
           tie_band: float | None) -> tuple[str, str]:
    """(the node to keep, why), from nodes ranked best first by point estimate (`ranked[0]` is the leader)."""
    leader = ranked[0]
    tied = [n for n in ranked[1:] if tie_band is not None and _indistinguishable(confidence[n], tie_band)]
    if tied:
        smallest = min([leader, *tied], key=lambda n: (trainable_params[n], ranked.index(n)))
        if smallest != leader:
            c = confidence[smallest]
            return smallest, (f"kept {smallest} over leader {leader}: fewer trainable parameters ({trainable_params[smallest]:,} "
                              f"vs {trainable_params[leader]:,}), Uni. difference {c.diff:+.1f} [{c.diff_lo:+.1f}, {c.diff_hi:+.1f}] "
                              f"within tie band {tie_band:g}")
    c = confidence[leader]
    verdict = "clearly best" if not tied and all(confidence[n].diff_hi < 0 for n in ranked[1:]) else "best by point estimate"
    return leader, f"leader {leader}: {verdict} (P(best) {c.p_best:.2f})"


def _indistinguishable(c: Confidence, tie_band: float) -> bool:
    return c.diff_lo <= 0.0 <= c.diff_hi and -c.diff <= tie_band
