"""The shipped SLURM profile against a real one-node SLURM: jobs go through sbatch, per-rule
resources reach them, the tables equal a local run's, and a failed job shows its own log.

The config is smaller than the smoke preset (no search, one soft-masked region and full SFT:
15 jobs instead of about 40): each SLURM job costs a submission, a Snakemake start inside the job
and status polling. The profile gets only the edits its header lists for a site."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cofitune.infra import io
from tests.integration import slurm_cluster
from tests.integration.helpers import REPO, describe_failure, scratch_workdir, snakemake, table_differences, variant

pytestmark = pytest.mark.integration

SMALL = {
    "search": {"mode": "off"},
    "baselines": {"full_sft": True, "v_softmask": False, "lora": {"enabled": False}, "wise_ft": {"alphas": []},
                  "l2": {"enabled": False}, "hft": {"enabled": False}, "last_n": {"enabled": False}},
    "candidates": [{"layers": "h2", "modules": "ffn", "softmask": True}],
    "replicates": {"seeds": 1, "models": ["final", "baselines"]},
}
SITE_MEMORY_MB = {"default": 1000, "model": 2500}  # what this 2-core test node can give
# Snakemake's polling is tuned for real clusters (40 s before the first check); on one node a job
# takes seconds, so the test polls every 2 s. These are run options, not profile edits.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
                "--slurm-keep-successful-logs")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.unavailable_reason()
    if reason:
        if os.environ.get("COFITUNE_REQUIRE_SLURM"):
            pytest.fail(f"COFITUNE_REQUIRE_SLURM is set but {reason}")
        pytest.skip(reason)
    with slurm_cluster.single_node_cluster(tmp_path_factory.mktemp("slurm")) as host:
        yield host


def site_profile(folder: Path) -> Path:
    """The shipped profile with a site's edits (the keys its header lists) for this test node."""
    profile = io.read_yaml(REPO / "workflow" / "profiles" / "slurm" / "config.yaml")
    profile["default-resources"].update(slurm_partition=slurm_cluster.PARTITION, mem_mb=SITE_MEMORY_MB["default"])
    for resources in profile["set-resources"].values():
        resources["mem_mb"] = SITE_MEMORY_MB["model"]
    profile["set-threads"] = dict.fromkeys(profile["set-threads"], 2)
    profile["slurm-status-command"] = "squeue"  # this cluster has no accounting database (no sacct)
    folder.mkdir(parents=True)
    io.write_yaml(folder / "config.yaml", profile)
    return folder


def submitted_jobs(workdir: Path) -> dict[str, list[str]]:
    """Rule -> SLURM job ids, from the per-job logs the executor keeps (.../rule_<name>/.../<id>.log)."""
    jobs: dict[str, list[str]] = {}
    for log in (workdir / ".snakemake" / "slurm_logs").rglob("*.log"):
        rule = next(p for p in log.relative_to(workdir / ".snakemake" / "slurm_logs").parts if p.startswith("rule_"))
        jobs.setdefault(rule.removeprefix("rule_"), []).append(log.stem)
    return jobs


@pytest.fixture(scope="module")
def local_and_slurm(cluster, tmp_path_factory):
    local = scratch_workdir(tmp_path_factory.mktemp("local"))
    config = variant(local, "small", **SMALL)
    proc = snakemake(local, configfile=config)
    assert proc.returncode == 0, describe_failure(proc, local)
    remote = scratch_workdir(tmp_path_factory.mktemp("remote"))
    profile = site_profile(tmp_path_factory.mktemp("profiles") / "slurm")
    proc = snakemake(remote, "--profile", str(profile), *FAST_POLLING, configfile=config, cores=None)
    assert proc.returncode == 0, describe_failure(proc, remote)
    return local, remote, profile, config


def test_the_workflow_runs_through_sbatch_with_the_same_tables_as_a_local_run(local_and_slurm):
    local, remote, _, _ = local_and_slurm
    jobs = submitted_jobs(remote)
    assert {"prepare_model", "estimate_importance", "train_candidate", "evaluate_candidate"} <= set(jobs), jobs
    assert len(jobs["train_candidate"]) == 2 and len(jobs["evaluate_candidate"]) == 3
    for rule, ids in jobs.items():
        for job_id in ids:
            fields = slurm_cluster.job_fields(job_id)
            assert fields["JobState"] == "COMPLETED" and fields["Comment"].startswith(f"rule_{rule}"), (rule, fields)
    assert table_differences(local / "results", remote / "results") == {}


def test_per_rule_resources_reach_the_job(local_and_slurm):
    _, remote, profile, _ = local_and_slurm
    settings = io.read_yaml(profile / "config.yaml")
    jobs = submitted_jobs(remote)
    train = slurm_cluster.job_fields(jobs["train_candidate"][0])
    data = slurm_cluster.job_fields(jobs["prepare_data"][0])
    assert train["Partition"] == data["Partition"] == slurm_cluster.PARTITION
    assert train["MinMemoryNode"] == f"{settings['set-resources']['train_candidate']['mem_mb']}M"
    assert data["MinMemoryNode"] == f"{settings['default-resources']['mem_mb']}M"
    assert train["TimeLimit"] == _minutes(settings["set-resources"]["train_candidate"]["runtime"])
    assert data["TimeLimit"] == _minutes(settings["default-resources"]["runtime"])
    assert train["NumCPUs"] == str(settings["set-threads"]["train_candidate"]) and data["NumCPUs"] == "1"


def test_a_failed_job_shows_its_own_log(local_and_slurm):
    _, remote, profile, config = local_and_slurm
    trained = remote / "results" / "train" / "full_sft" / "trained.safetensors"
    trained.write_bytes(trained.read_bytes()[:1000])  # newer than its evaluation: only that job reruns
    proc = snakemake(remote, "--profile", str(profile), *FAST_POLLING, configfile=config, cores=None)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    job_log = "results/logs/evaluate/confirm/full_sft.log"
    assert re.search(rf"Error in rule evaluate_candidate:.*?log: {re.escape(job_log)}", output, re.DOTALL), output[-3000:]
    text = (remote / job_log).read_text()
    assert "Traceback" in text and "trained.safetensors: not a readable safetensors file" in text
    failed = submitted_jobs(remote)["evaluate_candidate"]
    assert any(slurm_cluster.job_fields(j)["JobState"] == "FAILED" for j in failed)


def _minutes(minutes: int) -> str:
    hours, rest = divmod(int(minutes), 60)
    return f"{hours:02d}:{rest:02d}:00"
