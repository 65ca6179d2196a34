"""Typed, versioned records: written and read by one owner; stale or foreign files are refused by name."""

from __future__ import annotations

import pytest

from cofitune.infra import io
from cofitune.infra.records import EvalRecord, LevelDecision, RecordError, TrainRecord


def _eval_record():
    return EvalRecord(candidate="base", metrics=[{"format": "plain", "task": "t", "metric": "acc,none", "value": 0.5, "n": 4}],
                      split="confirm", batch_size=8, device="cpu", wall_seconds=1.5, total_params=1000, kl_base=0.25,
                      kl_tokens=40)


def test_records_round_trip(tmp_path):
    records = [
        _eval_record(),
        TrainRecord.untrained({"candidate": "wise_ft_0.5", "method": "wise_ft", "layer_range": "", "module_set": "", "softmask": False},
                              {"alpha": 0.5}, [0, 1], 1000, seed=1),
        LevelDecision(level=1, mode="greedy", contenders=[{"node": "0-0.5_ffn", "uni": 1.0}], chosen_id="0-0.5_ffn"),
    ]
    for record in records:
        path = tmp_path / f"{record.KIND}.json"
        record.write(path)
        assert type(record).read(path) == record
        assert io.read_json(path)["version"] == type(record).VERSION


def test_a_stale_or_foreign_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "metrics.json"
    io.write_json(path, {"candidate": "base", "metrics": [], "batch_size": 8})  # the pre-record layout
    with pytest.raises(RecordError, match=rf"{path}: not a eval_metrics record .* delete {path}"):
        EvalRecord.read(path)
    _eval_record().write(path)
    with pytest.raises(RecordError, match="not a train_metrics record"):
        TrainRecord.read(path)
    data = io.read_json(path)
    io.write_json(path, {**data, "version": 99})
    with pytest.raises(RecordError, match=f"record version 99, this cofitune reads {EvalRecord.VERSION}"):
        EvalRecord.read(path)
    io.write_json(path, {**{k: v for k, v in data.items() if k != "device"}, "colour": "red"})
    with pytest.raises(RecordError, match=r"missing fields \['device'\] and unknown fields \['colour'\]"):
        EvalRecord.read(path)
