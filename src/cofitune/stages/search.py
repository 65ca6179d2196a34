"""Rule `decide_level` (the checkpoint of the coarse search): score a level, keep one node."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cofitune.coarse import search as tree
from cofitune.coarse.decision import choose
from cofitune.coarse.settings import SearchSection
from cofitune.evaluation.scores import candidate_scores
from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.records import EvalRecord, LevelDecision, TrainRecord
from cofitune.models.regions import format_layer_range

log = logging.getLogger(__name__)


def decide_level(
    *, level: int, search: SearchSection, node_ids: Sequence[str], metrics_files: Sequence[str | Path], evaluation: EvaluationSection,
    out_file: str | Path, samples_files: Sequence[str | Path] = (), train_files: Sequence[str | Path] = (),
    runs: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Score a level's contenders from their evaluations, with the confidence of the choice, and
    record the node the search keeps (the leader, or a smaller one within the tie band).

    `runs` maps a node to its evaluated runs (itself and its replicate seeds; default: itself); the
    files follow the runs in order. A replicated node scores the mean over its seeds, and the
    confidence resamples its seeds, then items."""
    runs = {n: list(runs[n]) if runs and n in runs else [n] for n in node_ids}
    contenders = [tree.Node.from_id(n) for n in node_ids]
    run_scores = {}
    for run, metrics_file in zip([r for n in node_ids for r in runs[n]], metrics_files, strict=True):
        record = EvalRecord.read(metrics_file)
        run_scores[run] = candidate_scores(record.metrics, evaluation.speciality, evaluation.groups, evaluation.formats,
                                           evaluation.rank_format)
    rows, scores = [], {}
    for node in contenders:
        mean = {k: sum(run_scores[r][k] for r in runs[node.id]) / len(runs[node.id]) for k in ("spe", "ver", "uni")}
        scores[node.id] = tree.Score(uni=mean["uni"], ver=mean["ver"])
        rows.append({"node": node.id, "layer_range": format_layer_range(node.layer_range), "module_set": node.module_set,
                     **mean, "n_seeds": len(runs[node.id])})
    ranked = [n.id for n in sorted(contenders, key=lambda n: tree.rank_key(n, scores[n.id]))]
    chosen, reason = ranked[0], f"leader {ranked[0]} (no per-item scores: no confidence)"
    if samples_files:
        confidence = _confidence(ranked, rows, samples_files, evaluation, search.seed, runs)
        params = {(record := TrainRecord.read(f)).candidate: record.trainable_params for f in train_files}
        chosen, reason = choose(ranked, confidence, params, search.tie_band)
        for row in rows:
            c = confidence[row["node"]]
            row.update(p_best=c.p_best, diff=c.diff, diff_lo=c.diff_lo, diff_hi=c.diff_hi, trainable_params=params[row["node"]])
    log.info("level %d (%s): %s -> %s", level, search.mode, ", ".join(f"{r['node']} {r['uni']:.2f}" for r in rows), reason)
    LevelDecision(level=level, mode=search.mode, contenders=rows, chosen_id=chosen, reason=reason).write(out_file)


def _confidence(ranked: Sequence[str], rows: Sequence[Mapping[str, Any]], samples_files: Sequence[str | Path],
                evaluation: EvaluationSection, seed: int, runs: Mapping[str, Sequence[str]]):
    import pyarrow as pa

    from cofitune.coarse.decision import level_confidence
    from cofitune.evaluation.scores import item_scores_by_task, resampled_scores
    from cofitune.infra import io

    samples = pa.concat_tables([io.read_parquet(f) for f in samples_files]).to_pylist()
    nodes = [r["node"] for r in rows]
    _, spe, ver = resampled_scores(item_scores_by_task(samples), [r for n in nodes for r in runs[n]], evaluation.speciality,
                                   evaluation.groups, evaluation.rank_format, seed=seed, replicates={n: runs[n] for n in nodes})
    return level_confidence(nodes, [r["uni"] for r in rows], spe + ver, leader=ranked[0])
