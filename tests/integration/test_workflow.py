"""The real Snakemake workflow on the smoke preset: a full run, then the DAG's promises."""

from __future__ import annotations

import math
import re
import shutil
import time

import pyarrow.parquet as pq
import pytest
import torch

from cofitune.infra import io
from cofitune.methods.candidates import candidate_from_spec
from cofitune.models import regions
from cofitune.models.modeling import load_prepared
from tests.integration.helpers import (
    PRESETS,
    REPO,
    describe_failure,
    kill_tree,
    paths_outside,
    planned_jobs,
    planned_paths,
    repo_copy,
    scratch_workdir,
    snakemake,
    start_snakemake,
    table_differences,
    variant,
)

pytestmark = pytest.mark.integration

BASELINES = {"full_sft", "full_sft_lr0.0001", "v_softmask", "lora", "wise_ft_0.5", "l2", "hft", "last_1", "spectrum_final", "mofo_0.15"}
TRAINED_BASELINES = BASELINES - {"wise_ft_0.5"}
AFTER_SEARCH = {"spectrum_final"}  # matched to the final model's budget: planned with it, not up front
KNOWN_BASELINES, KNOWN_TRAINED_BASELINES = BASELINES - AFTER_SEARCH, TRAINED_BASELINES - AFTER_SEARCH


def _rows(workdir, table):
    return pq.read_table(workdir / "results" / "tables" / f"{table}.parquet").to_pylist()


def _search_nodes(workdir):
    return {r["node"] for r in _rows(workdir, "search_trace")}


def _replicates(workdir) -> set[str]:
    """The smoke preset's second seeds: of the final model, of its region without the soft-mask, of full SFT."""
    return {f"{_final(workdir)}_seed1235", f"{_final(workdir).removesuffix('_softmask')}_seed1235", "full_sft_seed1235"}


def _final(workdir):
    return next(r["candidate"] for r in _rows(workdir, "summary") if r["cofitune"])


def _controls(workdir) -> set[str]:
    """The smoke preset's fine-level controls of the final model (search.fine_controls)."""
    return {f"{_final(workdir)}-uniform", f"{_final(workdir)}-shuffled"}


def _chosen_node(workdir):
    return _final(workdir).removesuffix("_softmask")


def test_candidates_table_schema_and_values(smoke):
    table = pq.read_table(smoke / "results" / "tables" / "candidates.parquet")
    evaluations = {(r["candidate"], r["eval_split"]): r for r in table.to_pylist()}
    assert len(evaluations) == table.num_rows
    rows = {candidate: r for (candidate, _), r in evaluations.items()}
    replicates = _replicates(smoke)
    assert set(rows) == {"base"} | BASELINES | _search_nodes(smoke) | {_final(smoke)} | _controls(smoke) | replicates
    assert {r["model"] for r in rows.values()} == set(rows) - replicates
    # search nodes on the select items; the reported models on confirm; the chosen node on both
    assert {c for c, split in evaluations if split == "select"} == _search_nodes(smoke)
    assert {c for c, split in evaluations if split == "confirm"} & _search_nodes(smoke) == {_chosen_node(smoke)}
    for name in ("layer_indices", "trainable_params", "spe", "ver", "uni", "config_hash", "versions", "eval_batch_size",
                 "seed", "score_plain_spe_arith", "score_chat_vk_world", "group_plain_reasoning", "ver_chat", "ver_plain"):
        assert name in table.column_names, name
    for row in rows.values():
        for key, value in row.items():
            if isinstance(value, float):
                assert not math.isnan(value), (row["candidate"], key)
        assert row["uni"] == pytest.approx(row["spe"] + row["ver"])
        assert row["ver"] == row["ver_chat"]  # the smoke preset ranks by the chat format
        assert (row["ver_plain"] is None) == (row["eval_split"] == "select")  # the search reads the ranking format only
        assert row["eval_batch_size"] == 8 and row["seed"] == (1235 if row["candidate"] in replicates else 1234)
        assert "torch" in row["versions"]
    assert rows["base"]["final_loss"] is None and rows["base"]["trainable_params"] == 0
    regions_ = [rows[c]["trainable_params"] for c in ("full_sft", "0-0.5_mha+ffn", "hft", "lora", "last_1")]
    assert len(set(regions_)) == len(regions_)  # candidates really differ in what they train
    assert rows["full_sft"]["trainable_fraction"] == rows["v_softmask"]["trainable_fraction"] == 1.0
    assert rows["v_softmask"]["method"] == "v_softmask" and rows[_final(smoke)]["method"] == "region+softmask"
    assert rows["0-0.5_mha+ffn"]["layer_indices"] == [0, 1]
    assert 0 < rows["spectrum_final"]["trainable_params"] <= rows[_final(smoke)]["trainable_params"]  # the matched budget
    assert len({r["config_hash"] for r in rows.values()}) == 1


def test_samples_table_keeps_every_item_of_its_split(smoke):
    samples = pq.read_table(smoke / "results" / "tables" / "samples.parquet").to_pylist()
    evaluations = {(s["candidate"], s["split"]) for s in samples}
    per_evaluation = {e: sum((s["candidate"], s["split"]) == e for s in samples) for e in evaluations}
    assert len(per_evaluation) == len(_rows(smoke, "candidates"))
    # 8 items each: 1 speciality task (plain) + 3 versatility tasks, on select in the ranking format
    # only, on confirm in both formats
    assert {n for (_, split), n in per_evaluation.items() if split == "select"} == {8 * (1 + 3)}
    assert {n for (_, split), n in per_evaluation.items() if split == "confirm"} == {8 * (1 + 3 * 2)}
    assert all(s["score"] in (0.0, 1.0) for s in samples)
    for task in {s["task"] for s in samples}:  # the same items for every model of a split, none in both
        items = {split: {(s["candidate"], s["format"]): set() for s in samples if s["split"] == split} for split in ("select", "confirm")}
        for s in samples:
            if s["task"] == task:
                items[s["split"]][(s["candidate"], s["format"])].add(s["doc_id"])
        select, confirm = ({frozenset(v) for v in items[split].values() if v} for split in ("select", "confirm"))
        assert len(select) == len(confirm) == 1 and not set(next(iter(select))) & set(next(iter(confirm))), task


def test_trained_tensors_are_exactly_the_region_and_really_trained(smoke):
    model, _ = load_prepared(smoke / "results" / "model" / "base")
    base = dict(model.named_parameters())
    specs = {"0-0.5_mha+ffn": {"layers": "h1", "modules": "mha+ffn"}, "last_1": {"method": "last_n", "n": 1}}
    for candidate_id, spec in specs.items():
        folder = smoke / "results" / "train" / candidate_id
        tensors = io.load_tensors(folder / "trained.safetensors")
        assert set(tensors) == set(candidate_from_spec(spec).trainable_names(model))
        assert all(not torch.equal(tensors[n], base[n]) for n in tensors)
        metrics = io.read_json(folder / "train_metrics.json")
        assert metrics["trainable_params"] == regions.count_parameters(model, tensors)
        assert metrics["steps"] == 4 and len(metrics["history"]) == 4


def test_soft_masked_candidates_use_the_importance(smoke):
    table = pq.read_table(smoke / "results" / "tables" / "importance.parquet")
    assert table.column_names == ["source", "layer", "unit_type", "unit_index", "raw", "normalised", "split_half_rho"]
    rows = table.to_pylist()
    rho = [r["split_half_rho"] for r in rows if r["source"] == "sft"]
    assert all(v is None or -1.0 <= v <= 1.0 for v in rho) and any(v is not None for v in rho)
    assert all(r["split_half_rho"] is None for r in rows if r["source"] == "combined")
    assert {r["source"] for r in rows} == {"sft", "combined"}
    assert {r["unit_type"] for r in rows} == {"head", "intermediate", "output"}
    assert all(0.0 <= r["normalised"] < 1.0 for r in rows)
    assert sum(r["source"] == "sft" and r["raw"] != 0.0 for r in rows) > 0
    for picture in ("importance_head", "importance_intermediate", "importance_output", "tradeoff", "loss_curves"):
        assert (smoke / "results" / "plots" / f"{picture}.png").read_bytes()[:4] == b"\x89PNG"
    train = smoke / "results" / "train"
    final = io.read_json(train / _final(smoke) / "train_metrics.json")
    assert final["softmask"] and final["softmask_tensors"] > 0
    assert io.read_json(train / "v_softmask" / "train_metrics.json")["softmask_tensors"] == 4 * 3  # up, gate, down of every layer
    unmasked = io.load_tensors(train / _final(smoke).removesuffix("_softmask") / "trained.safetensors")
    masked = io.load_tensors(train / _final(smoke) / "trained.safetensors")
    assert unmasked.keys() == masked.keys() and any(not torch.equal(unmasked[n], masked[n]) for n in masked)
    assert final["softmask_apply"] == "update" and final["mask_control"] == ""
    for control in _controls(smoke):  # same region and mask parts, other factors: other weights
        record = io.read_json(train / control / "train_metrics.json")
        assert (record["mask_control"], record["softmask_apply"]) == (control.rpartition("-")[2], "update")
        assert record["softmask_tensors"] == final["softmask_tensors"] and record["trainable_params"] == final["trainable_params"]
        weights = io.load_tensors(train / control / "trained.safetensors")
        assert weights.keys() == masked.keys() and any(not torch.equal(weights[n], masked[n]) for n in masked)


def test_greedy_search_trains_seven_nodes_and_each_choice_is_the_parquet_argmax(smoke):
    trace = _rows(smoke, "search_trace")
    assert len(_search_nodes(smoke)) == 7 and {r["level"] for r in trace} == {1, 2, 3}
    uni = {r["candidate"]: r["uni"] for r in _rows(smoke, "candidates") if r["eval_split"] == "select"}
    for level in (1, 2, 3):
        contenders = [r for r in trace if r["level"] == level]
        (chosen,) = [r for r in contenders if r["chosen"]]
        assert uni[chosen["node"]] == max(uni[r["node"]] for r in contenders)
    trained = {p.name for p in (smoke / "results" / "train").iterdir()}
    assert trained == BASELINES | _search_nodes(smoke) | {_final(smoke)} | _controls(smoke) | _replicates(smoke)
    assert _final(smoke) == next(r["node"] for r in trace if r["level"] == 3 and r["chosen"]) + "_softmask"


def test_a_replicate_changes_the_trained_weights_and_nothing_else(smoke):
    train = smoke / "results" / "train"
    for model in ("full_sft", _final(smoke)):
        first, second = (io.read_json(train / c / "train_metrics.json") for c in (model, f"{model}_seed1235"))
        assert (first["seed"], second["seed"]) == (1234, 1235)
        # the seed orders the data: which examples fill the few steps (and their token counts) differ too
        varies = ("candidate", "seed", "history", "final_loss", "wall_seconds", "tokens_per_second", "input_tokens", "target_tokens")
        same = {k for k in first if k not in varies}
        assert {k: first[k] for k in same} == {k: second[k] for k in same}, model
        a, b = (io.load_tensors(train / c / "trained.safetensors") for c in (model, f"{model}_seed1235"))
        assert a.keys() == b.keys() and any(not torch.equal(a[n], b[n]) for n in a)
    summary = {r["candidate"]: r for r in _rows(smoke, "summary")}
    assert summary["full_sft"]["n_seeds"] == summary[_final(smoke)]["n_seeds"] == 2 and summary["base"]["n_seeds"] == 1
    candidates = {r["candidate"]: r for r in _rows(smoke, "candidates") if r["eval_split"] == "confirm"}
    assert summary["full_sft"]["uni"] == pytest.approx((candidates["full_sft"]["uni"] + candidates["full_sft_seed1235"]["uni"]) / 2)


def test_the_claims_compare_replicated_models_with_paired_intervals(smoke):
    claims = _rows(smoke, "claims")
    summary = {r["candidate"]: r for r in _rows(smoke, "summary")}
    names = {r["claim"] for r in claims}
    assert {"forgetting", "vs full SFT", "fine level", "fine level, uniform control", "fine level, shuffled control", "vs base"} <= names
    assert len(claims) == 3 * len(names)
    for control in ("uniform", "shuffled"):
        (row,) = [r for r in claims if r["claim"] == f"fine level, {control} control" and r["metric"] == "uni"]
        assert (row["model"], row["reference"]) == (_final(smoke), f"{_final(smoke)}-{control}")
    fine = {r["metric"]: r for r in claims if r["claim"] == "fine level"}
    assert fine["uni"]["model"] == _final(smoke) and fine["uni"]["reference"] == _final(smoke).removesuffix("_softmask")
    assert (fine["uni"]["model_seeds"], fine["uni"]["reference_seeds"]) == (2, 2)
    for row in claims:
        assert row["diff"] == pytest.approx(summary[row["model"]][row["metric"]] - summary[row["reference"]][row["metric"]])
        assert row["diff_lo"] <= row["diff_hi"] and row["verdict"] in ("higher", "lower", "undecided")
        assert row["p_value"] <= row["p_holm"] <= 1.0  # Holm over the whole table never lowers a p-value
        assert (row["verdict"] == "undecided") == (row["p_holm"] > 0.05 or row["diff"] == 0.0)
    markdown = (smoke / "results" / "tables" / "summary.md").read_text()
    assert f"- fine level: CoFiTune vs node {fine['uni']['reference']} (2 vs 2 seed(s)): Spe. " in markdown


def test_summary_has_intervals_retention_and_gain(smoke):
    summary = {r["candidate"]: r for r in _rows(smoke, "summary")}
    assert summary["base"]["ver_retention"] == pytest.approx(1.0)
    for row in summary.values():
        assert row["spe_lo"] <= row["spe"] <= row["spe_hi"] and row["ver_lo"] <= row["ver"] <= row["ver_hi"]
    assert sum(r["pareto"] for r in summary.values()) >= 1 and sum(r["cofitune"] for r in summary.values()) == 1
    markdown = (smoke / "results" / "tables" / "summary.md").read_text()
    assert "**CoFiTune**" in markdown and "Full SFT" in markdown and "LoRA" in markdown


def test_the_summary_reports_confirm_items_and_the_chosen_nodes_selection_optimism(smoke):
    summary = {r["candidate"]: r for r in _rows(smoke, "summary")}
    assert set(summary) & _search_nodes(smoke) == {_chosen_node(smoke)}  # the other nodes stay in the search trace
    node = summary[_chosen_node(smoke)]
    trace = next(r for r in _rows(smoke, "search_trace") if r["level"] == 3 and r["chosen"])
    assert node["uni_select"] == pytest.approx(trace["uni"]) and node["search_chose"] and node["selection_runs"] == 1
    same_run = next(r["uni"] for r in _rows(smoke, "candidates") if r["candidate"] == node["candidate"] and r["eval_split"] == "confirm")
    assert node["selection_optimism"] == pytest.approx(trace["uni"] - same_run) and node["uni_confirm_same_runs"] == same_run
    assert all(r["selection_optimism"] is None for c, r in summary.items() if c != _chosen_node(smoke))
    assert {(r["confirm_items_min"], r["select_items_max"], r["eval_split"]) for r in summary.values()} == {(8, 8, "confirm")}
    markdown = (smoke / "results" / "tables" / "summary.md").read_text()
    assert "Scores on the confirm items (8 items per task): no search decision saw them" in markdown
    assert f"Selection optimism: node {_chosen_node(smoke)}, the search's choice, scored Uni. " in markdown
    assert "Search decisions, on the select items" in markdown
    card = (smoke / "results" / "final" / "README.md").read_text()
    assert "Scores on the confirm items (8 items per task)" in card and "no selection optimism" in card


def test_every_rule_wrote_its_log_and_benchmark(smoke):
    logs = {p.relative_to(smoke / "results" / "logs").as_posix() for p in (smoke / "results" / "logs").rglob("*.log")}
    assert {"prepare_model.log", "prepare_data.log", "make_tasks.log", "aggregate_tables.log", "train/full_sft.log",
            "evaluate/confirm/base.log", "evaluate/select/0-0.5_mha+ffn.log", "importance/sft.log", "combine_importance.log", "tabulate_importance.log",
            "search/level_1.log", "summarise_results.log", "plot_results.log", "train/wise_ft_0.5.log",
            "write_final_model.log", "export_region.log", "draw_search_tree.log", "render_summary_page.log",
            "render_model_card_page.log"} <= logs
    importance_log = (smoke / "results" / "logs" / "importance" / "sft.log").read_text()
    assert "importance batch 2/2" in importance_log and "split-half reliability of head importance" in importance_log
    assert "step 4/4" in (smoke / "results" / "logs" / "train" / "full_sft.log").read_text()  # progress is visible
    assert len(list((smoke / "results" / "benchmarks").rglob("*.tsv"))) == len(logs)


def test_a_finished_run_has_nothing_left_to_do(smoke):
    proc = snakemake(smoke, "-n")
    assert proc.returncode == 0 and planned_jobs(proc.stdout) == {}, proc.stdout[-2000:]


def test_forcing_one_node_reruns_it_and_its_dependents_only(smoke):
    # the tables, and what shows them: plots, report pages, the final model's card (its weights are rewritten too)
    downstream = {"aggregate_tables": 1, "summarise_results": 1, "plot_results": 1, "draw_search_tree": 1,
                  "render_summary_page": 1, "write_final_model": 1, "render_model_card_page": 1, "all": 1}
    proc = snakemake(smoke, "-n", "--forcerun", "results/eval/confirm/lora/metrics.json")
    assert planned_jobs(proc.stdout) == {"evaluate_candidate": 1, **downstream}, proc.stdout[-2000:]
    proc = snakemake(smoke, "-n", "--forcerun", "results/train/lora/trained.safetensors")
    assert planned_jobs(proc.stdout) == {"train_candidate": 1, "evaluate_candidate": 1, **downstream}


def test_changing_evaluation_settings_reevaluates_without_retraining(smoke):
    evaluation = {"batch_size": 4, "select": 8, "confirm": 8, "formats": ["plain", "chat"], "rank_format": "chat"}
    proc = snakemake(smoke, "-n", configfile=variant(smoke, "eval_bs4", evaluation=evaluation))
    jobs = planned_jobs(proc.stdout)
    assert "train_candidate" not in jobs and "estimate_importance" not in jobs, proc.stdout[-2000:]
    # what is known before the search re-decides: base, baselines, full SFT's second seed, level 1
    assert jobs["evaluate_candidate"] == 1 + len(KNOWN_BASELINES) + 1 + 3
    assert jobs["decide_level"] == 1


def test_adding_a_tracker_retrains_nothing(smoke):
    training = {**io.read_yaml(PRESETS / "smoke.yaml")["training"], "report_to": ["tensorboard"]}
    proc = snakemake(smoke, "-n", configfile=variant(smoke, "tracked", training=training))
    assert proc.returncode == 0 and planned_jobs(proc.stdout) == {}, proc.stdout[-2000:]


def test_changing_an_override_retrains_only_the_overridden_candidate(smoke):
    baselines = {**io.read_yaml(PRESETS / "smoke.yaml")["baselines"], "full_sft": [3.0e-5]}
    proc = snakemake(smoke, "-n", configfile=variant(smoke, "other_lr", baselines=baselines))
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == 1 and jobs["evaluate_candidate"] == 1, proc.stdout[-2000:]
    assert "full_sft_lr3e-05" in proc.stdout and "decide_level" not in jobs


def test_changing_training_settings_retrains_every_candidate(smoke):
    training = {"learning_rate": 0.002, "max_steps": 4, "micro_batch_size": 4, "max_length": 128}
    proc = snakemake(smoke, "-n", configfile=variant(smoke, "lr", training=training))
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == len(KNOWN_TRAINED_BASELINES) + 1 + 3 and "prepare_model" not in jobs, proc.stdout[-2000:]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"trainig": {"epochs": 1}}, "(top level): unknown key(s) 'trainig'"),
        ({"seed": "abc"}, "seed: 'abc' is not of type 'integer'"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate: 'fast' is not of type 'number'"),
        ({"training": {"max_steps": 4, "batch_size": 2}}, "training: unknown key(s) 'batch_size'"),
        ({"candidates": [{"layers": "q2", "modules": "attn"}]}, "unknown module set 'attn'"),
        ({"model": {"name_or_path": "./models/llama-8b"}}, "model.name_or_path: local folder './models/llama-8b' not found"),
        ({"versatility": {"local_tasks": {"vk_world": "data/versatility/vk_world.jsonl"}, "groups": {"knowledge": ["vk_world", "mmlux"]}}},
         "versatility.groups.knowledge: unknown lm-eval task 'mmlux'"),
        ({"speciality": {"train": ["data/versatility/vk_world.jsonl"], "tasks": {"arith": {"test": "data/speciality/arith/test.jsonl"}}}},
         "defects in data/versatility/vk_world.jsonl"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, sections, message):
    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir, "-n", configfile=variant(workdir, "bad", **sections))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_after_a_level_only_the_next_level_is_planned(smoke, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(smoke, copy, symlinks=True)
    level3 = [r["node"] for r in _rows(copy, "search_trace") if r["level"] == 3][1:]  # the two new nodes
    for node in [*level3, _final(copy)]:
        shutil.rmtree(copy / "results" / "train" / node)
        for split in ("select", "confirm"):
            shutil.rmtree(copy / "results" / "eval" / split / node, ignore_errors=True)
    (copy / "results" / "search" / "level_3.json").unlink()
    for table in ("candidates.parquet", "samples.parquet", "summary.parquet", "summary.md", "search_trace.parquet"):
        (copy / "results" / "tables" / table).unlink()  # a run stopped after level 2 had not made them yet
    proc = snakemake(copy, "-n")
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == 2 and jobs["evaluate_candidate"] == 2 and jobs["decide_level"] == 1, proc.stdout[-3000:]
    planned = set(re.findall(r"wildcards: candidate=(\S+)", proc.stdout))
    assert planned == set(level3)


def test_a_run_killed_during_a_level_retrains_nothing_finished(tmp_path):
    workdir = scratch_workdir(tmp_path)
    config = variant(workdir, "killed", baselines={"full_sft": False, "v_softmask": False},
                     evaluation={"batch_size": 8, "select": 4, "confirm": 4, "formats": ["plain"], "rank_format": "plain"})
    level1 = {"0-0.5_mha+ffn", "0.25-0.75_mha+ffn", "0.5-1_mha+ffn"}

    def trained() -> set[str]:  # outputs are written atomically: present means that training finished
        return {node for node in level1 if (workdir / "results" / "train" / node / "trained.safetensors").is_file()}

    process = start_snakemake(workdir, configfile=config)
    try:
        deadline = time.monotonic() + 600
        while not trained() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # past Snakemake's bookkeeping of that job, and into the next one (a training takes longer)
    finally:
        kill_tree(process.pid)
        process.wait()
    finished = trained()
    assert finished and finished != level1, "expected the kill to land inside level 1"
    assert snakemake(workdir, "--unlock", configfile=config).returncode == 0
    # a job killed mid-way is flagged incomplete; --rerun-incomplete retrains (resumes) it, and only it
    proc = snakemake(workdir, "-n", "--rerun-incomplete", configfile=config)
    planned = set(re.findall(r"rule train_candidate:.*?wildcards: candidate=(\S+)", proc.stdout, flags=re.S))
    assert planned == level1 - finished, proc.stdout[-3000:]


@pytest.mark.parametrize(("mode", "expected"), [("greedy", 3), ("grid", 21)])
def test_search_modes_plan_their_nodes(tmp_path, mode, expected):
    workdir = scratch_workdir(tmp_path)
    config = variant(workdir, mode, search={"mode": mode}, baselines={"full_sft": False, "v_softmask": False})
    proc = snakemake(workdir, "-n", configfile=config)
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == expected and jobs["decide_level"] == 1
    assert planned_paths(proc.stdout) and paths_outside(proc.stdout, workdir) == []  # the smoke preset's names stay inside
    # the first level's nodes are evaluated on the select items only; the models known up front on confirm
    evaluated = re.findall(r"wildcards: split=(\w+), candidate=(\S+)", proc.stdout)
    trained = re.findall(r"rule train_candidate:.*?wildcards: candidate=(\S+)", proc.stdout, flags=re.S)
    nodes = {c for c in trained if re.fullmatch(r"[0-9.]+-[0-9.]+_[a-z+]+", c)}  # region ids without a mask
    assert len(nodes) == expected and {c for split, c in evaluated if split == "select"} == nodes
    assert {c for split, c in evaluated if split == "confirm"} & {c for split, c in evaluated if split == "select"} == set()


def test_the_real_model_preset_plans_a_full_run(tmp_path):
    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir, "-n", configfile=PRESETS / "real-model.yaml")
    jobs = planned_jobs(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert planned_paths(proc.stdout) and paths_outside(proc.stdout, workdir) == []  # names stay inside results_dir
    # + 1 training (the paper rule; the middle block is a level-1 node) and + 2 evaluations (both rules on confirm)
    assert jobs["train_candidate"] == 3 + 6 + 1 and jobs["evaluate_candidate"] == 1 + 8 + 3 + 2


@pytest.mark.parametrize(
    ("preset", "trainings", "evaluations"),
    [(None, 3 + 4 + 1, 1 + 3 + 5 + 1), ("quick", 3 + 1, 1 + 3 + 2), ("paper", 3 + 9 + 1 + 1, 1 + 3 + 9 + 3 + 1 + 2)],
)
def test_the_default_config_and_its_overlay_presets_plan_a_full_run(preset, trainings, evaluations, tmp_path):
    """Planned up front: level 1's three nodes and the baselines (Wise-FT merges weights, so it is
    evaluated but not trained); each later level is planned after the previous level's checkpoint.
    Evaluations: base + level 1 + baselines (one per Wise-FT alpha); + 1: full SFT's second seed
    (the final model's comes with the last level). The fixed rules (in the paper preset only): + 1
    training (the paper's ffn in [.25,.5); the middle block is a level-1 node, trained once) and + 2
    evaluations (both on the confirm items)."""
    configs = (REPO / "config.yaml",) + ((PRESETS / f"{preset}.yaml",) if preset else ())
    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir, "-n", configfile=configs)
    jobs = planned_jobs(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert planned_paths(proc.stdout) and paths_outside(proc.stdout, workdir) == []  # names stay inside results_dir
    assert (jobs["train_candidate"], jobs["evaluate_candidate"]) == (trainings, evaluations)


def test_lint_is_clean(tmp_path):
    proc = snakemake(scratch_workdir(tmp_path), "--lint")
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("edited", "expected_not_planned"),
    [
        # fine/masking.py is imported only by the training stage: retrain (and re-evaluate), nothing upstream
        ("fine/masking.py", {"estimate_importance", "combine_importance", "tabulate_importance", "prepare_model", "prepare_data", "make_tasks"}),
        # fine/importance.py reaches training only through masking.py (a transitive import): re-estimate and retrain
        ("fine/importance.py", {"prepare_model", "prepare_data", "make_tasks"}),
    ],
)
def test_editing_a_module_reruns_the_stages_that_import_it_and_only_those(smoke, tmp_path, edited, expected_not_planned):
    repo = repo_copy(tmp_path / "repo")
    module = repo / "src" / "cofitune" / edited
    # A copy lives at another path, which Snakemake's own code and input triggers see as a change; the
    # code hashes under test are parameters, so plan with the params (and mtime) triggers only.
    triggers = ("-n", "--rerun-triggers", "params", "mtime")
    proc = snakemake(smoke, *triggers, snakefile=repo / "Snakefile")
    assert proc.returncode == 0 and planned_jobs(proc.stdout) == {}, proc.stdout[-3000:]  # an identical copy plans nothing
    module.write_text(module.read_text() + "\n# an edit\n")
    proc = snakemake(smoke, *triggers, snakefile=repo / "Snakefile")
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == len(KNOWN_TRAINED_BASELINES) + 1 + 3, proc.stdout[-3000:]  # + full SFT's second seed
    assert jobs["evaluate_candidate"] == len(KNOWN_BASELINES) + 1 + 3  # the base model is not re-evaluated
    assert not expected_not_planned & set(jobs), jobs
    if edited == "fine/importance.py":
        assert jobs["estimate_importance"] == 1


def test_two_runs_from_scratch_give_identical_tables(smoke, tmp_path):
    """Same config, two runs from scratch: every Parquet table identical, except the wall-time columns
    (candidates and summary: train_wall_seconds, eval_wall_seconds)."""
    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    assert sorted(p.name for p in (workdir / "results" / "tables").glob("*.parquet")) == [
        "candidates.parquet", "claims.parquet", "importance.parquet", "samples.parquet", "search_trace.parquet", "summary.parquet"]
    assert table_differences(smoke / "results", workdir / "results") == {}
