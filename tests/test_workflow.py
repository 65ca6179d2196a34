"""The real Snakemake workflow on the smoke preset: a full run, then the DAG's promises."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
import torch

from cofitune import io, regions
from cofitune.candidates import candidate_from_spec
from cofitune.modeling import load_prepared
from tests.workflow_helpers import describe_failure, planned_jobs, scratch_workdir, snakemake, variant

pytestmark = pytest.mark.integration

CANDIDATES = {"base", "full_sft", "0.25-0.5_ffn", "0-0.5_mha+ffn", "0.25-0.5_ffn_softmask", "V-SoftMask"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    workdir = scratch_workdir(tmp_path_factory.mktemp("smoke"))
    proc = snakemake(workdir)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    return workdir


def test_candidates_table_schema_and_values(smoke):
    table = pq.read_table(smoke / "results" / "tables" / "candidates.parquet")
    rows = {r["candidate"]: r for r in table.to_pylist()}
    assert set(rows) == CANDIDATES
    for name in ("layer_indices", "trainable_params", "spe", "ver", "uni", "config_hash", "versions", "eval_batch_size",
                 "seed", "score_plain_spe_arith", "score_chat_vk_world", "group_plain_reasoning", "ver_chat", "ver_plain"):
        assert name in table.column_names, name
    for row in rows.values():
        for key, value in row.items():
            if isinstance(value, float):
                assert not math.isnan(value), (row["candidate"], key)
        assert row["uni"] == pytest.approx(row["spe"] + row["ver"])
        assert row["ver"] == row["ver_chat"]  # the smoke preset ranks by the chat format
        assert row["eval_batch_size"] == 8 and row["seed"] == 1234
    assert rows["base"]["final_loss"] is None and rows["base"]["trainable_params"] == 0
    regions_ = [rows[c]["trainable_params"] for c in ("full_sft", "0.25-0.5_ffn", "0-0.5_mha+ffn")]
    assert len(set(regions_)) == len(regions_)  # candidates really differ in what they train
    assert rows["full_sft"]["trainable_fraction"] == rows["V-SoftMask"]["trainable_fraction"] == 1.0
    assert rows["V-SoftMask"]["method"] == "v_softmask" and rows["0.25-0.5_ffn_softmask"]["method"] == "region+softmask"
    assert rows["0.25-0.5_ffn_softmask"]["softmask"] and not rows["0.25-0.5_ffn"]["softmask"]
    assert rows["0-0.5_mha+ffn"]["layer_indices"] == [0, 1]
    assert len({r["config_hash"] for r in rows.values()}) == 1


def test_samples_table_keeps_every_item(smoke):
    samples = pq.read_table(smoke / "results" / "tables" / "samples.parquet").to_pylist()
    per_candidate = {c: sum(s["candidate"] == c for s in samples) for c in CANDIDATES}
    # 8 items each: 1 speciality task (plain) + 3 versatility tasks in 2 formats
    assert set(per_candidate.values()) == {8 * (1 + 3 * 2)}
    assert all(s["score"] in (0.0, 1.0) for s in samples)


def test_trained_tensors_are_exactly_the_region_and_really_trained(smoke):
    model, _ = load_prepared(smoke / "results" / "model" / "base")
    base = dict(model.named_parameters())
    specs = {"0.25-0.5_ffn": {"layers": "q2", "modules": "ffn"}, "0-0.5_mha+ffn": {"layers": "h1", "modules": "mha+ffn"}}
    for candidate_id, spec in specs.items():
        folder = smoke / "results" / "train" / candidate_id
        tensors = io.load_tensors(folder / "trained.safetensors")
        assert set(tensors) == set(candidate_from_spec(spec).trainable_names(model))
        assert all(not torch.equal(tensors[n], base[n]) for n in tensors)
        metrics = io.read_json(folder / "train_metrics.json")
        assert metrics["trainable_params"] == regions.count_parameters(model, tensors)
        assert metrics["steps"] == 4 and len(metrics["history"]) == 4


def test_soft_masked_candidates_use_the_importance_and_train_differently(smoke):
    table = pq.read_table(smoke / "results" / "tables" / "importance.parquet")
    assert table.column_names == ["source", "layer", "unit_type", "unit_index", "raw", "normalised"]
    rows = table.to_pylist()
    assert {r["source"] for r in rows} == {"sft", "combined"}
    assert {r["unit_type"] for r in rows} == {"head", "intermediate", "output"}
    assert all(0.0 <= r["normalised"] < 1.0 for r in rows)
    assert sum(r["source"] == "sft" and r["raw"] != 0.0 for r in rows) > 0
    for unit in ("head", "intermediate", "output"):
        assert (smoke / "results" / "plots" / f"importance_{unit}.png").read_bytes()[:4] == b"\x89PNG"
    train = smoke / "results" / "train"
    masked = io.read_json(train / "0.25-0.5_ffn_softmask" / "train_metrics.json")
    assert masked["softmask_tensors"] == 2 and masked["softmask_parts"] == ["input_projection", "output_projection"]
    assert io.read_json(train / "V-SoftMask" / "train_metrics.json")["softmask_tensors"] == 4 * 3  # up, gate, down of every layer
    plain = io.load_tensors(train / "0.25-0.5_ffn" / "trained.safetensors")
    soft = io.load_tensors(train / "0.25-0.5_ffn_softmask" / "trained.safetensors")
    assert plain.keys() == soft.keys() and any(not torch.equal(plain[n], soft[n]) for n in plain)


def test_every_rule_wrote_its_log_and_benchmark(smoke):
    logs = {p.relative_to(smoke / "results" / "logs").as_posix() for p in (smoke / "results" / "logs").rglob("*.log")}
    assert {"prepare_model.log", "prepare_data.log", "make_tasks.log", "aggregate_tables.log", "train/full_sft.log",
            "evaluate/base.log", "importance/sft.log", "combine_importance.log", "tabulate_importance.log"} <= logs
    assert "importance batch 4/4" in (smoke / "results" / "logs" / "importance" / "sft.log").read_text()
    assert "step 4/4" in (smoke / "results" / "logs" / "train" / "full_sft.log").read_text()  # progress is visible
    assert len(list((smoke / "results" / "benchmarks").rglob("*.tsv"))) == len(logs)


def test_a_finished_run_has_nothing_left_to_do(smoke):
    proc = snakemake(smoke, "-n")
    assert proc.returncode == 0 and planned_jobs(proc.stdout) == {}, proc.stdout[-2000:]


def test_forcing_one_node_reruns_it_and_its_dependents_only(smoke):
    proc = snakemake(smoke, "-n", "--forcerun", "results/eval/0-0.5_mha+ffn/metrics.json")
    assert planned_jobs(proc.stdout) == {"evaluate_candidate": 1, "aggregate_tables": 1, "all": 1}, proc.stdout[-2000:]
    proc = snakemake(smoke, "-n", "--forcerun", "results/train/0-0.5_mha+ffn/trained.safetensors")
    assert planned_jobs(proc.stdout) == {"train_candidate": 1, "evaluate_candidate": 1, "aggregate_tables": 1, "all": 1}


def test_changing_evaluation_settings_reevaluates_without_retraining(smoke):
    evaluation = {"batch_size": 4, "limit": 8, "formats": ["plain", "chat"], "rank_format": "chat"}
    proc = snakemake(smoke, "-n", configfile=variant(smoke, "eval_bs4", evaluation=evaluation))
    assert planned_jobs(proc.stdout) == {"evaluate_candidate": 6, "aggregate_tables": 1, "all": 1}, proc.stdout[-2000:]


def test_changing_training_settings_retrains_every_candidate(smoke):
    training = {"learning_rate": 0.002, "max_steps": 4, "micro_batch_size": 4, "max_length": 128}
    jobs = planned_jobs(snakemake(smoke, "-n", configfile=variant(smoke, "lr", training=training)).stdout)
    assert jobs == {"train_candidate": 5, "evaluate_candidate": 5, "aggregate_tables": 1, "all": 1}


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"trainig": {"epochs": 1}}, "(top level): unknown key(s) 'trainig'"),
        ({"seed": "abc"}, "seed: 'abc' is not of type 'integer'"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate: 'fast' is not of type 'number'"),
        ({"training": {"max_steps": 4, "batch_size": 2}}, "training: unknown key(s) 'batch_size'"),
        ({"candidates": [{"layers": "q2", "modules": "attn"}]}, "unknown module set 'attn'"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, sections, message):
    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir, "-n", configfile=variant(workdir, "bad", **sections))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_lint_is_clean(tmp_path):
    proc = snakemake(scratch_workdir(tmp_path), "--lint")
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
