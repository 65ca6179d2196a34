"""Small statistics shared by several modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Rank correlation (ties get their average rank); NaN for fewer than 3 pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} values against {len(y)}")
    if len(x) < 3:
        return float("nan")
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1, dtype=float)
    for value in np.unique(values):  # average the ranks of ties
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def bootstrap_p_value(differences: Sequence[float]) -> float:
    """Two-sided p-value of 'the difference is 0' from resampled differences: twice the smaller
    share of resamples on either side of 0 (each share counted with one pseudo-resample, so a
    finite number of resamples never gives p = 0), at most 1."""
    d = np.asarray(differences, dtype=float)
    below, above = (1.0 + np.sum(d <= 0.0)) / (len(d) + 1.0), (1.0 + np.sum(d >= 0.0)) / (len(d) + 1.0)
    return float(min(1.0, 2.0 * min(below, above)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the input order): a hypothesis is rejected at family
    level alpha when its adjusted p-value is at most alpha; the chance of rejecting any true one is at
    most alpha, whatever the dependence between the tests."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
