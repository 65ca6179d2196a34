"""Scores on a 0-100 scale (METHOD.md section 2): Spe., Ver. (mean of group means), Uni. = Spe. + Ver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any


def metric_lookup(metric_rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(format, task) -> value on the 0-100 scale."""
    return {(r["format"], r["task"]): 100.0 * float(r["value"]) for r in metric_rows}


def speciality_score(values: Mapping[tuple[str, str], float], speciality: Sequence[str]) -> float:
    return fmean(values[("plain", task)] for task in speciality)


def group_scores(values: Mapping[tuple[str, str], float], groups: Mapping[str, Sequence[str]], fmt: str) -> dict[str, float]:
    return {group: fmean(values[(fmt, task)] for task in tasks) for group, tasks in groups.items()}


def candidate_scores(
    metric_rows: Sequence[Mapping[str, Any]],
    speciality: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    formats: Sequence[str],
    rank_format: str,
) -> dict[str, float]:
    """Flat columns: spe, ver, uni (ver in the ranking format), and per format/group/task scores."""
    values = metric_lookup(metric_rows)
    row: dict[str, float] = {}
    for (fmt, task), value in sorted(values.items()):
        row[f"score_{fmt}_{task}"] = value
    for fmt in formats:
        by_group = group_scores(values, groups, fmt)
        for group, value in by_group.items():
            row[f"group_{fmt}_{group}"] = value
        row[f"ver_{fmt}"] = fmean(by_group.values())
    row["spe"] = speciality_score(values, speciality)
    row["ver"] = row[f"ver_{rank_format}"]
    row["uni"] = row["spe"] + row["ver"]
    return row
