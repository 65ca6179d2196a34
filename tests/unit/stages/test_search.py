"""Stage `decide_level`: a level's decision from its evaluation files, replicated nodes included."""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from cofitune.coarse.settings import SearchSection
from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra import io
from cofitune.infra.records import EvalRecord, LevelDecision, TrainRecord
from cofitune.stages.search import decide_level

EVALUATION = EvaluationSection.from_settings({"speciality": ["s"], "groups": {"g": ["v"]}, "formats": ["plain"], "rank_format": "plain"})
NODES = ["0-0.5_mha+ffn", "0.5-1_mha+ffn"]


def _write_run(folder, run: str, spe_hits: int, ver_hits: int, items: int = 20) -> tuple:
    """metrics.json, samples.parquet and train_metrics.json of one run: the first `*_hits` items right."""
    scores = {"s": [1.0] * spe_hits + [0.0] * (items - spe_hits), "v": [1.0] * ver_hits + [0.0] * (items - ver_hits)}
    metrics = [{"format": "plain", "task": t, "metric": "acc", "value": sum(v) / items, "n": items} for t, v in scores.items()]
    EvalRecord(candidate=run, metrics=metrics, split="select", batch_size=8, device="cpu", wall_seconds=1.0, total_params=100,
               kl_base=None, kl_tokens=0).write(folder / f"{run}.json")
    io.write_parquet(folder / f"{run}.parquet", pa.Table.from_pylist(
        [{"candidate": run, "format": "plain", "task": t, "doc_id": i, "score": x} for t, v in scores.items() for i, x in enumerate(v)]))
    record = TrainRecord.untrained({"candidate": run, "method": "region", "layer_range": "0-0.5", "module_set": "mha+ffn",
                                    "softmask": False}, {}, [0], 100, seed=1)
    dataclasses.replace(record, trainable_params=10).write(folder / f"{run}.train.json")
    return folder / f"{run}.json", folder / f"{run}.parquet", folder / f"{run}.train.json"


def test_a_replicated_node_is_scored_by_its_mean_over_seeds_and_its_seeds_are_resampled(tmp_path):
    # node A: seed 1 far ahead (150 Uni.), seed 2 far behind (10): mean 80; node B: one seed at 90
    runs = {NODES[0]: [NODES[0], f"{NODES[0]}_seed2"], NODES[1]: [NODES[1]]}
    hits = {NODES[0]: (16, 14), f"{NODES[0]}_seed2": (0, 2), NODES[1]: (9, 9)}
    files = [_write_run(tmp_path, r, *hits[r]) for node in NODES for r in runs[node]]
    decide_level(level=1, search=SearchSection(mode="greedy", seed=3), node_ids=NODES, metrics_files=[f[0] for f in files], evaluation=EVALUATION,
                 out_file=tmp_path / "level.json", samples_files=[f[1] for f in files],
                 train_files=[f[2] for f in files if "_seed" not in f[2].name], runs=runs)
    decision = LevelDecision.read(tmp_path / "level.json")
    rows = {r["node"]: r for r in decision.contenders}
    assert rows[NODES[0]]["uni"] == (80.0 + 70.0 + 0.0 + 10.0) / 2 and rows[NODES[0]]["n_seeds"] == 2
    assert rows[NODES[1]]["uni"] == 90.0 and decision.chosen_id == NODES[1]  # A's first seed alone would have won
    # seeds this far apart make A's difference to the leader far wider than item noise alone would
    spread = rows[NODES[0]]["diff_hi"] - rows[NODES[0]]["diff_lo"]
    decide_level(level=1, search=SearchSection(mode="greedy", seed=3), node_ids=NODES, metrics_files=[files[0][0], files[2][0]], evaluation=EVALUATION,
                 out_file=tmp_path / "one_seed.json", samples_files=[files[0][1], files[2][1]], train_files=[files[0][2], files[2][2]])
    alone = LevelDecision.read(tmp_path / "one_seed.json")
    single = {r["node"]: r for r in alone.contenders}
    assert alone.chosen_id == NODES[0]
    assert single[NODES[0]]["n_seeds"] == 1 and spread > single[NODES[1]]["diff_hi"] - single[NODES[1]]["diff_lo"], (spread, single)
    assert 0.0 < rows[NODES[0]]["p_best"] < 1.0 and abs(rows[NODES[0]]["p_best"] + rows[NODES[1]]["p_best"] - 1.0) < 1e-9
