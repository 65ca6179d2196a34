"""Scores on a 0-100 scale (METHOD.md section 2): Spe., Ver. (mean of group means), Uni. = Spe. + Ver."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    """Flat columns: spe, ver, uni (ver in the ranking format), and per format/group/task scores, for
    each of `formats` that the metrics hold (an evaluation on the select items has the ranking one only)."""
    values = metric_lookup(metric_rows)
    row: dict[str, float] = {}
    for (fmt, task), value in sorted(values.items()):
        row[f"score_{fmt}_{task}"] = value
    for fmt in [f for f in formats if f == rank_format or all((f, t) in values for ts in groups.values() for t in ts)]:
        by_group = group_scores(values, groups, fmt)
        for group, value in by_group.items():
            row[f"group_{fmt}_{group}"] = value
        row[f"ver_{fmt}"] = fmean(by_group.values())
    row["spe"] = speciality_score(values, speciality)
    row["ver"] = row[f"ver_{rank_format}"]
    row["uni"] = row["spe"] + row["ver"]
    return row


def resampled_scores(
    item_scores: Mapping[tuple[str, str, str], Mapping[int, float]],
    candidates: Sequence[str],
    speciality: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    rank_format: str,
    n_resamples: int = 1000,
    seed: int = 1234,
    replicates: Mapping[str, Sequence[str]] | None = None,
):
    """(models, spe, ver): each model's Spe. and Ver. under `n_resamples` resamples, arrays (models, resamples).

    `item_scores[(candidate, format, task)]` maps doc_id -> score in [0, 1]. Resampling is paired:
    one draw of items per task serves every candidate and format, so differences and ratios
    between models get honest intervals. `replicates` maps a model to the candidates that are its
    training seeds (default: each candidate is a model of one seed); a model of several seeds is
    resampled hierarchically: each resample draws its seeds with replacement, then uses the shared
    item draw, and averages. Draws: items per task (tasks sorted), then seeds per replicated model.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    keys = sorted({(fmt, task) for _, fmt, task in item_scores})
    doc_ids = {key: sorted(item_scores[(candidates[0], *key)]) for key in keys}
    n_items = {task: len(ids) for (_, task), ids in doc_ids.items()}  # a task has the same items in every format
    draws = {task: rng.integers(0, n, (n_resamples, n)) for task, n in sorted(n_items.items())}

    def resampled(fmt: str, task: str) -> np.ndarray:  # (candidates, resamples), on the 0-100 scale
        ids = doc_ids[(fmt, task)]
        matrix = np.array([[item_scores[(c, fmt, task)][i] for i in ids] for c in candidates])
        return 100.0 * matrix[:, draws[task]].mean(axis=-1)

    spe = np.mean([resampled("plain", t) for t in speciality], axis=0)
    ver = np.mean([np.mean([resampled(rank_format, t) for t in tasks_], axis=0) for tasks_ in groups.values()], axis=0)
    models = dict(replicates) if replicates else {c: [c] for c in candidates}
    rows = [[list(candidates).index(c) for c in runs] for runs in models.values()]
    seed_draws = [None if len(r) == 1 else rng.integers(0, len(r), (n_resamples, len(r))) for r in rows]
    spe, ver = (np.stack([_over_seeds(v, r, d) for r, d in zip(rows, seed_draws, strict=True)]) for v in (spe, ver))
    return list(models), spe, ver


def bootstrap(
    item_scores: Mapping[tuple[str, str, str], Mapping[int, float]],
    candidates: Sequence[str],
    speciality: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    rank_format: str,
    reference: Mapping[str, str],
    n_resamples: int = 1000,
    seed: int = 1234,
    level: float = 0.95,
    replicates: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, tuple[float, float]]]:
    """Percentile intervals over items (and seeds) for spe, ver, uni, ver_retention and spe_gain_ratio,
    keyed by model (see `resampled_scores`); `reference` names the 'base' and (optionally) 'full_sft' models."""
    resampled = resampled_scores(item_scores, candidates, speciality, groups, rank_format, n_resamples, seed, replicates)
    return resampled_intervals(resampled, reference, level)


def resampled_intervals(
    resampled: tuple[Sequence[str], Any, Any], reference: Mapping[str, str], level: float = 0.95,
) -> dict[str, dict[str, tuple[float, float]]]:
    """`bootstrap`'s intervals from `resampled_scores`' output (so other statistics can share its draws)."""
    import numpy as np

    candidates, spe, ver = resampled
    candidates, n_resamples = list(candidates), spe.shape[1]
    values = {"spe": spe, "ver": ver, "uni": spe + ver}
    base = candidates.index(reference["base"])
    with np.errstate(divide="ignore", invalid="ignore"):
        values["ver_retention"] = ver / ver[base]
        if reference.get("full_sft") in candidates:
            full = candidates.index(reference["full_sft"])
            values["spe_gain_ratio"] = (spe - spe[base]) / (spe[full] - spe[base])
    tail = (1.0 - level) / 2.0 * 100.0
    intervals: dict[str, dict[str, tuple[float, float]]] = {c: {} for c in candidates}
    for name, samples in values.items():
        for i, candidate in enumerate(candidates):
            finite = samples[i][np.isfinite(samples[i])]
            if len(finite) < 0.9 * n_resamples:  # undefined ratios (e.g. no speciality gain at all)
                intervals[candidate][name] = (float("nan"), float("nan"))
            else:
                low, high = np.percentile(finite, [tail, 100.0 - tail])
                intervals[candidate][name] = (float(low), float(high))
    return intervals


def paired_difference_intervals(
    resampled: tuple[Sequence[str], Any, Any], pairs: Sequence[tuple[str, str]], level: float = 0.95,
) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """(model, reference) -> metric -> percentile interval of model minus reference, for spe, ver
    and uni, from `resampled_scores`' output (paired: the same item and seed draws for every model)."""
    tests = paired_difference_tests(resampled, pairs, level)
    return {pair: {name: (low, high) for name, (low, high, _) in metrics.items()} for pair, metrics in tests.items()}


def paired_difference_tests(
    resampled: tuple[Sequence[str], Any, Any], pairs: Sequence[tuple[str, str]], level: float = 0.95,
) -> dict[tuple[str, str], dict[str, tuple[float, float, float]]]:
    """`paired_difference_intervals` with each difference's two-sided bootstrap p-value:
    (model, reference) -> metric -> (low, high, p)."""
    import numpy as np

    from cofitune.infra.stats import bootstrap_p_value

    models, spe, ver = resampled
    values = {"spe": spe, "ver": ver, "uni": spe + ver}
    tail = (1.0 - level) / 2.0 * 100.0
    out: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}
    for model, reference in pairs:
        i, j = list(models).index(model), list(models).index(reference)
        out[(model, reference)] = {}
        for name, v in values.items():
            low, high = (float(x) for x in np.percentile(v[i] - v[j], [tail, 100.0 - tail]))
            out[(model, reference)][name] = (low, high, bootstrap_p_value(v[i] - v[j]))
    return out


def _over_seeds(values, rows: Sequence[int], draws):
    """One model's resampled scores: its single run's, or the mean over each resample's drawn seeds."""
    import numpy as np

    if draws is None:
        return values[rows[0]]
    return values[np.asarray(rows)[draws], np.arange(values.shape[1])[:, None]].mean(axis=1)


def item_scores_by_task(samples: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[int, float]]:
    """Per-item sample rows -> (candidate, format, task) -> doc_id -> score."""
    out: dict[tuple[str, str, str], dict[int, float]] = {}
    for s in samples:
        out.setdefault((s["candidate"], s["format"], s["task"]), {})[s["doc_id"]] = s["score"]
    return out


def task_intervals(
    item_scores: Mapping[tuple[str, str, str], Mapping[int, float]],
    n_resamples: int = 1000,
    seed: int = 1234,
    level: float = 0.95,
) -> dict[tuple[str, str, str], tuple[float, float, float, int]]:
    """(candidate, format, task) -> (score, low, high, items): the mean item score on the 0-100 scale
    with a percentile bootstrap interval over that task's items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tail = (1.0 - level) / 2.0 * 100.0
    out: dict[tuple[str, str, str], tuple[float, float, float, int]] = {}
    for key in sorted(item_scores):
        values = 100.0 * np.array([item_scores[key][i] for i in sorted(item_scores[key])], dtype=float)
        means = values[rng.integers(0, len(values), (n_resamples, len(values)))].mean(axis=1)
        low, high = np.percentile(means, [tail, 100.0 - tail])
        out[key] = (float(values.mean()), float(low), float(high), len(values))
    return out
