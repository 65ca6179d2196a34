"""Search small, train big: `search.reuse` trains the region another run chose, with no search job."""

from __future__ import annotations

import pytest

from cofitune.infra import io
from tests.integration.helpers import PRESETS, describe_failure, planned_jobs, scratch_workdir, snakemake, variant

pytestmark = pytest.mark.integration

NO_BASELINES = {"full_sft": False, "v_softmask": False}


def _reuse_config(workdir, name, source, model):
    return variant(workdir, name, model=model, search={"reuse": str(source), "fine_controls": []}, baselines=NO_BASELINES,
                   replicates={"seeds": 1})


def test_a_reused_region_is_trained_on_a_deeper_sibling_without_a_search(smoke, tmp_path):
    source = smoke / "results"
    reused = io.read_json(source / "final" / "region.json")
    workdir = scratch_workdir(tmp_path / "big")
    model = {**io.read_yaml(PRESETS / "smoke.yaml")["model"], "tiny": {"layers": 8}}  # twice the smoke model's depth
    config = _reuse_config(workdir, "reuse", source, model)
    plan = snakemake(workdir, "-n", configfile=config)
    jobs = planned_jobs(plan.stdout)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert "decide_level" not in jobs and "draw_search_tree" not in jobs, jobs
    # the reused region with the soft-mask (CoFiTune) and without it (the fine level's reference); base and both scored
    assert jobs["train_candidate"] == 2 and jobs["evaluate_candidate"] == 3 and jobs["write_final_model"] == 1, jobs
    assert f"candidate={reused['candidate']}" in plan.stdout

    proc = snakemake(workdir, configfile=config)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    region = io.read_json(workdir / "results" / "final" / "region.json")
    assert (region["candidate"], region["layer_range"], region["module_set"]) == (
        reused["candidate"], reused["layer_range"], reused["module_set"])
    assert (region["n_layers"], reused["n_layers"]) == (8, 4) and region["layer_indices"] != reused["layer_indices"]
    assert region["region_source"].startswith(f"reused (search.reuse) from {source / 'final' / 'region.json'}")
    card = (workdir / "results" / "final" / "README.md").read_text()
    assert f"- chosen: reused (search.reuse) from {source / 'final' / 'region.json'}" in card


def test_a_region_of_another_family_is_refused_before_any_job(smoke, tmp_path):
    workdir = scratch_workdir(tmp_path / "other")
    config = _reuse_config(workdir, "gpt2", smoke / "results", {"name_or_path": "builtin:tiny-gpt2"})
    proc = snakemake(workdir, "-n", configfile=config)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not (workdir / "results").exists()
    assert "search.reuse: the region in" in output and "searched on a 'llama' model" in output, output[-3000:]
    assert "this run's model is 'gpt2'" in output
