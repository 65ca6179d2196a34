"""Rule `decide_level` (the checkpoint of the coarse search): score a level, keep one node."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cofitune import search
from cofitune.records import EvalRecord, LevelDecision
from cofitune.regions import format_layer_range
from cofitune.scores import candidate_scores

log = logging.getLogger(__name__)


def decide_level(
    level: int, mode: str, node_ids: Sequence[str], metrics_files: Sequence[str | Path], evaluation: Mapping[str, Any],
    out_file: str | Path,
) -> None:
    """Score a level's contenders from their evaluations and record the one the search keeps."""
    contenders = [search.Node.from_id(n) for n in node_ids]
    rows, scores = [], {}
    for node, metrics_file in zip(contenders, metrics_files, strict=True):
        record = EvalRecord.read(metrics_file)
        s = candidate_scores(record.metrics, evaluation["speciality"], evaluation["groups"], evaluation["formats"], evaluation["rank_format"])
        scores[node.id] = search.Score(uni=s["uni"], ver=s["ver"])
        rows.append({"node": node.id, "layer_range": format_layer_range(node.layer_range), "module_set": node.module_set,
                     "spe": s["spe"], "ver": s["ver"], "uni": s["uni"]})
    chosen = search.best(contenders, scores)
    log.info("level %d (%s): %s -> keep %s", level, mode, ", ".join(f"{r['node']} {r['uni']:.2f}" for r in rows), chosen.id)
    LevelDecision(level=level, mode=mode, contenders=rows, chosen_id=chosen.id).write(out_file)
