"""Fault injection: kills, corruption and truncation in real workflow runs. After each, the rerun either
completes with the same tables as an undisturbed run, or stops with a message naming the file to
delete; nothing finished is redone and no half-written output is taken as finished. (A full disk is
injected into the writer itself: tests/unit/infra/test_io.py.)"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.integration.helpers import (
    describe_failure,
    kill_tree,
    planned_jobs,
    repo_copy,
    scratch_workdir,
    snakemake,
    start_snakemake,
    table_differences,
    variant,
)

pytestmark = pytest.mark.integration

# Small on purpose: no search, full SFT only, one prompt format, 4 items; long enough (60 steps,
# a checkpoint every 5) that a kill can land inside the training.
SECTIONS = {
    "search": {"mode": "off"},
    "baselines": {"full_sft": True, "v_softmask": False, "lora": {"enabled": False}, "wise_ft": {"alphas": []},
                  "l2": {"enabled": False}, "hft": {"enabled": False}, "last_n": {"enabled": False}},
    "training": {"learning_rate": 1.0e-3, "max_steps": 60, "micro_batch_size": 4, "max_length": 128, "save_every_steps": 5,
                 "log_every_steps": 5},
    "evaluation": {"batch_size": 8, "select": 4, "confirm": 4, "formats": ["plain"], "rank_format": "plain"},
}
TRAINED = Path("results/train/full_sft/trained.safetensors")


def _new_run(tmp_path: Path, name: str) -> tuple[Path, Path]:
    workdir = scratch_workdir(tmp_path / name)
    return workdir, variant(workdir, "faults", **SECTIONS)


def _run(workdir: Path, config: Path, *args: str):
    proc = snakemake(workdir, *args, configfile=config)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    return proc


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    workdir, config = _new_run(tmp_path_factory.mktemp("undisturbed"), "run")
    _run(workdir, config)
    return workdir


def _kill_when(workdir: Path, config: Path, ready) -> None:
    """Start a run and SIGKILL it (Snakemake and its jobs, like a crash) as soon as `ready()` holds."""
    process = start_snakemake(workdir, configfile=config)
    try:
        deadline = time.monotonic() + 600
        while not ready() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert ready(), "the run ended before the fault could be injected"
    finally:
        kill_tree(process.pid)
        process.wait()


def _resume(workdir: Path, config: Path):
    assert snakemake(workdir, "--unlock", configfile=config).returncode == 0
    return _run(workdir, config, "--rerun-incomplete")


@pytest.mark.parametrize("corrupt_checkpoint", [False, True], ids=["intact-checkpoint", "corrupted-checkpoint"])
def test_a_training_killed_mid_step_reruns_to_the_same_tables(undisturbed, tmp_path, corrupt_checkpoint):
    workdir, config = _new_run(tmp_path, "run")
    state = workdir / "results" / "train" / "full_sft" / "checkpoint" / "state.safetensors"
    _kill_when(workdir, config, state.is_file)
    assert not (workdir / TRAINED).exists(), "the kill was meant to land inside the training"
    if corrupt_checkpoint:
        state.write_bytes(state.read_bytes()[:100])
    _resume(workdir, config)
    log = (workdir / "results" / "logs" / "train" / "full_sft.log").read_text()
    assert ("ignoring unreadable checkpoint" in log) if corrupt_checkpoint else ("resumed from checkpoint at step" in log)
    assert not state.parent.exists()  # removed once the training finished
    # the killed attempt's log stays beside the rerun's (Snakemake deleted the log itself); the rerun's is gone from attempts/
    (attempt,) = (workdir / "results" / "logs" / "train" / "attempts").glob("full_sft.*.log")
    assert "step 5/60" in attempt.read_text() and "resumed from checkpoint" not in attempt.read_text()
    assert table_differences(undisturbed / "results", workdir / "results") == {}


def test_two_checkouts_on_one_results_folder_run_one_at_a_time(tmp_path):
    """Snakemake's lock covers a working folder only: the results folder's own lock refuses a second run
    from another checkout while the first runs, and is taken over, with a warning, once it was killed."""
    shared = tmp_path / "shared-results"
    first, config = _new_run(tmp_path, "checkout-a")
    second = scratch_workdir(tmp_path / "checkout-b")
    other_checkout = repo_copy(tmp_path / "repo-b")
    lock = shared / ".cofitune-run.lock"
    running = start_snakemake(first, "--config", f"results_dir={shared}", configfile=config)
    try:
        deadline = time.monotonic() + 300
        while not (shared / "logs" / "train" / "full_sft.log").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lock.is_file(), "the first run should hold the results folder's lock while it trains"
        refused = snakemake(second, "--config", f"results_dir={shared}", configfile=config, snakefile=other_checkout / "Snakefile")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "is in use by another run" in output and f"working folder {first}" in output, output
        assert running.poll() is None, "the refused run must leave the first one alone"
    finally:
        kill_tree(running.pid)
        running.wait()
    assert lock.is_file()  # killed: nothing released it
    proc = snakemake(second, "--config", f"results_dir={shared}", configfile=config, snakefile=other_checkout / "Snakefile")
    assert proc.returncode == 0, describe_failure(proc, second)
    assert "took over the stale lock of a run that is no longer running" in proc.stdout + proc.stderr
    assert not lock.exists()  # released at the end


def test_an_evaluation_killed_midway_is_redone_and_nothing_else(undisturbed, tmp_path):
    workdir, config = _new_run(tmp_path, "run")
    started = workdir / "results" / "logs" / "evaluate" / "confirm" / "full_sft.log"
    _kill_when(workdir, config, lambda: started.is_file() and "lm_eval" in started.read_text())
    assert not (workdir / "results" / "eval" / "confirm" / "full_sft" / "metrics.json").exists()
    # what had finished when the kill came (the scheduler may run an evaluation before another training)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (workdir / "results" / "train").glob("*/trained.safetensors")}
    assert "full_sft" in finished
    proc = _resume(workdir, config)
    retrained = re.findall(r"rule train_candidate:\n(?:\s+.*\n)*?\s+wildcards: candidate=(\S+)", proc.stdout + proc.stderr)
    assert not set(retrained) & set(finished), retrained
    assert {c: (workdir / "results" / "train" / c / "trained.safetensors").stat().st_mtime_ns for c in finished} == finished
    assert "candidate=full_sft\n" in proc.stdout + proc.stderr  # the killed evaluation is redone
    assert table_differences(undisturbed / "results", workdir / "results") == {}


def test_snakemake_killed_between_jobs_redoes_nothing_finished(undisturbed, tmp_path):
    workdir, config = _new_run(tmp_path, "run")
    report = workdir / "results" / "data" / "train_report.json"
    _kill_when(workdir, config, report.is_file)
    model = workdir / "results" / "model" / "base" / "model.safetensors"
    finished_at = model.stat().st_mtime_ns
    proc = _resume(workdir, config)
    assert "rule prepare_model" not in proc.stdout + proc.stderr and model.stat().st_mtime_ns == finished_at
    assert table_differences(undisturbed / "results", workdir / "results") == {}


def test_a_corrupted_trained_file_stops_naming_it_then_deleting_it_recovers(undisturbed, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(undisturbed, workdir, symlinks=True)
    config = workdir / "faults.yaml"
    trained = workdir / TRAINED
    trained.write_bytes(trained.read_bytes()[:1000])  # newer than what was made from it: Snakemake re-evaluates
    proc = snakemake(workdir, configfile=config)
    assert proc.returncode != 0
    log = (workdir / "results" / "logs" / "evaluate" / "confirm" / "full_sft.log").read_text()
    assert f"{TRAINED}: not a readable safetensors file" in log and "delete it and rerun the job that writes it" in log
    assert "Traceback" in log  # the job's own log holds the error
    trained.unlink()
    _run(workdir, config)
    assert table_differences(undisturbed / "results", workdir / "results") == {}


def test_a_truncated_data_file_stops_the_dry_run_naming_file_and_line(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(scratch_workdir(tmp_path / "data_source") / "data", workdir / "data")
    train = workdir / "data" / "speciality" / "arith" / "train.jsonl"
    text = train.read_text()
    train.write_text(text[: text.index("\n", len(text) // 2) + 30])  # cut inside a line, as an interrupted copy does
    config = variant(workdir, "faults", **SECTIONS)
    proc = snakemake(workdir, "-n", configfile=config)
    lines = text[: text.index("\n", len(text) // 2) + 30].count("\n") + 1
    assert proc.returncode != 0 and f"data/speciality/arith/train.jsonl:{lines}: invalid JSON" in proc.stdout + proc.stderr
    assert planned_jobs(proc.stdout) == {} and not (workdir / "results").exists()


def test_a_failing_script_job_writes_its_traceback_into_its_own_log(tmp_path):
    workdir = scratch_workdir(tmp_path / "run")
    config = variant(workdir, "faults", **SECTIONS, model={"name_or_path": "no-such-org/no-such-model"})
    proc = snakemake(workdir, "--", "results/model/base", configfile=config)  # offline: the hub id cannot load
    assert proc.returncode != 0 and "results/logs/prepare_model.log" in proc.stdout + proc.stderr
    log = (workdir / "results" / "logs" / "prepare_model.log").read_text()
    assert "job failed: OSError" in log and "Traceback (most recent call last)" in log and "in load_source" in log
