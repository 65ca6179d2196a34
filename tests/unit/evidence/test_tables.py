"""Result tables from typed records: candidate rows, the summary's labels, the search trace, Markdown."""

from __future__ import annotations

import pytest

from cofitune.evaluation.settings import EvaluationSection
from cofitune.evidence.markdown import markdown_report
from cofitune.evidence.tables import (
    SplitReport,
    candidates_table,
    search_choice_on_both,
    search_trace_table,
    summary_table,
)
from cofitune.infra.records import EvalRecord, LevelDecision, TrainRecord
from cofitune.methods.candidates import BASE, candidate_from_spec

EVALUATION = EvaluationSection.from_settings({"speciality": ["spe_a"], "groups": {"g": ["t"]}, "formats": ["plain"], "rank_format": "plain"})
CONFIG = {"seed": 7}


def _evaluated(candidate, spe, ver):
    metrics = [{"format": "plain", "task": "spe_a", "metric": "acc,none", "value": spe, "n": 2},
               {"format": "plain", "task": "t", "metric": "acc,none", "value": ver, "n": 2}]
    return EvalRecord(candidate=candidate, metrics=metrics, split="confirm", batch_size=8, device="cpu", wall_seconds=1.0, total_params=100,
                      kl_base=0.0 if candidate == "base" else 0.1, kl_tokens=10)


def _trained(spec, params):
    c = candidate_from_spec(spec)
    record = TrainRecord.untrained(c.describe(), dict(c.options), c.layer_indices(4), 100, seed=7)
    return TrainRecord(**{**record.__dict__, "trainable_params": params, "steps": 3, "final_loss": 1.5})


@pytest.fixture
def table():
    records = [
        (_evaluated("base", 0.0, 0.5), TrainRecord.untrained(BASE.describe(), {}, [], 100, seed=7)),
        (_evaluated("full_sft", 0.5, 0.25), _trained({"layers": "all", "modules": "all"}, 100)),
        (_evaluated("0.25-0.5_ffn", 0.5, 0.5), _trained({"layers": "q2", "modules": "ffn"}, 10)),
        (_evaluated("0.25-0.5_ffn_softmask", 0.5, 0.5), _trained({"layers": "q2", "modules": "ffn", "softmask": True}, 10)),
        (_evaluated("wise_ft_0.5", 0.25, 0.5), TrainRecord.untrained(
            candidate_from_spec({"method": "wise_ft", "alpha": 0.5}).describe(), {"alpha": 0.5}, [0, 1, 2, 3], 100, seed=7)),
    ]
    return candidates_table(records, EVALUATION, CONFIG)


def test_candidate_rows_come_from_the_records(table):
    rows = {r["candidate"]: r for r in table.to_pylist()}
    assert rows["base"]["method"] == "base" and rows["base"]["final_loss"] is None and rows["base"]["layer_indices"] == []
    assert rows["0.25-0.5_ffn"]["layer_range"] == "0.25-0.5" and rows["0.25-0.5_ffn"]["layer_indices"] == [1]
    assert rows["0.25-0.5_ffn"]["trainable_fraction"] == pytest.approx(0.1)
    assert rows["full_sft"]["layer_range"] == "all" and rows["wise_ft_0.5"]["layer_range"] == ""
    assert rows["full_sft"]["uni"] == pytest.approx(50 + 25) and rows["base"]["seed"] == 7


def test_summary_labels_and_markdown_name_each_method(table):
    summary = summary_table(table, {}, final_id="0.25-0.5_ffn_softmask")
    labels = {r["candidate"]: r["label"] for r in summary.to_pylist()}
    assert labels == {"base": "Base", "full_sft": "Full SFT", "0.25-0.5_ffn": "region", "0.25-0.5_ffn_softmask": "CoFiTune",
                      "wise_ft_0.5": "Wise-FT (0.5)"}
    markdown = markdown_report(summary)
    assert "| node 0.25-0.5_ffn" in markdown and "| **CoFiTune**" in markdown and "| Wise-FT (0.5)" in markdown


def test_the_summary_says_which_items_its_numbers_come_from_and_the_chosen_nodes_optimism(table):
    levels = [LevelDecision(level=1, mode="greedy", chosen_id="0-0.5_ffn", contenders=[]),
              LevelDecision(level=2, mode="greedy", chosen_id="0.25-0.5_ffn", contenders=[])]
    # the chosen node: one run on select, two on confirm (its replicate); only the shared run counts
    evaluations = [{"candidate": "0.25-0.5_ffn", "model": "0.25-0.5_ffn", "eval_split": "select", "uni": 112.0},
                   {"candidate": "0.25-0.5_ffn", "model": "0.25-0.5_ffn", "eval_split": "confirm", "uni": 98.0},
                   {"candidate": "0.25-0.5_ffn_seed2", "model": "0.25-0.5_ffn", "eval_split": "confirm", "uni": 102.0},
                   {"candidate": "0-0.5_ffn", "model": "0-0.5_ffn", "eval_split": "select", "uni": 100.0}]
    choice = search_choice_on_both(levels, evaluations)
    assert choice == {"chosen_node": "0.25-0.5_ffn", "select_uni": 112.0, "confirm_uni": 98.0, "runs": 1}
    assert search_choice_on_both([], evaluations) == {}
    report = SplitReport({"select": {"spe_a": 40, "t": 40}, "confirm": {"spe_a": 100, "t": 80}}, **choice)
    rows = {r["candidate"]: r for r in summary_table(table, {}, "0.25-0.5_ffn_softmask", report).to_pylist()}
    node = rows["0.25-0.5_ffn"]
    assert (node["uni_select"], node["uni_confirm_same_runs"], node["selection_optimism"], node["search_chose"]) == (112.0, 98.0, 14.0, True)
    assert rows["base"]["selection_optimism"] is None and not rows["base"]["search_chose"]
    assert (rows["base"]["confirm_items_min"], rows["base"]["confirm_items_max"], rows["base"]["select_items_min"]) == (80, 100, 40)
    markdown = markdown_report(summary_table(table, {}, "0.25-0.5_ffn_softmask", report))
    assert "Scores on the confirm items (80-100 items per task): no search decision saw them" in markdown
    assert "(select, 40 items per task)" in markdown
    assert ("Selection optimism: node 0.25-0.5_ffn, the search's choice, scored Uni. 112.0 on the select items that chose it "
            "and 98.0 on confirm (+14.0; the same 1 training run(s)).") in markdown
    no_search = markdown_report(summary_table(table, {}, None, SplitReport({"confirm": {"spe_a": 100, "t": 100}})))
    assert "Scores on the confirm items (100 items per task); no search ran." in no_search


def test_the_search_trace_uses_the_tables_vocabulary_and_links_parents():
    levels = [
        LevelDecision(level=2, mode="greedy", chosen_id="0.25-0.5_mha+ffn", contenders=[
            {"node": "0.25-0.5_mha+ffn", "layer_range": "0.25-0.5", "module_set": "mha+ffn", "spe": 1.0, "ver": 2.0, "uni": 3.0}]),
        LevelDecision(level=1, mode="greedy", chosen_id="0-0.5_mha+ffn", contenders=[
            {"node": "0-0.5_mha+ffn", "layer_range": "0-0.5", "module_set": "mha+ffn", "spe": 1.0, "ver": 1.0, "uni": 2.0}]),
    ]
    rows = search_trace_table(levels).to_pylist()
    assert [(r["level"], r["parent"], r["layer_range"], r["chosen"]) for r in rows] == [(1, "", "0-0.5", True), (2, "0-0.5_mha+ffn", "0.25-0.5", True)]


def test_the_forgetting_signal_is_judged_by_its_rank_correlation_with_the_ver_drop():
    from cofitune.evidence.tables import kl_forgetting_correlation

    rows = [{"candidate": "base", "ver": 60.0, "kl_base": 0.0}, {"candidate": "a", "ver": 58.0, "kl_base": 0.01},
            {"candidate": "b", "ver": 50.0, "kl_base": 0.05}, {"candidate": "c", "ver": 40.0, "kl_base": 0.2},
            {"candidate": "d", "ver": 55.0, "kl_base": None}]  # not measured: left out
    assert kl_forgetting_correlation(rows) == (pytest.approx(1.0), 3)
    rows[3]["kl_base"] = 0.001  # the largest drop now has the smallest KL
    rho, n = kl_forgetting_correlation(rows)
    assert n == 3 and rho == pytest.approx(-0.5)
    assert kl_forgetting_correlation(rows[:3])[1] == 0  # two models: no correlation reported


def test_full_sft_runs_form_a_curve_and_the_matched_one_has_the_closest_speciality():
    from cofitune.evidence.tables import full_sft_rows, matched_full_sft

    rows = [{"candidate": c, "method": m, "learning_rate": lr, "spe": spe} for c, m, lr, spe in (
        ("full_sft", "full_sft", 3e-4, 40.0), ("full_sft_lr0.0001", "full_sft", 1e-4, 22.0),
        ("full_sft_lr3e-05", "full_sft", 3e-5, 5.0), ("final", "region+softmask", 3e-4, 20.0), ("base", "base", None, 0.0))]
    assert [r["candidate"] for r in full_sft_rows(rows)] == ["full_sft_lr3e-05", "full_sft_lr0.0001", "full_sft"]
    assert matched_full_sft(rows, 20.0)["candidate"] == "full_sft_lr0.0001"
    assert matched_full_sft(rows, 12.0)["candidate"] == "full_sft_lr3e-05"  # 7 from 5, 10 from 22


def test_a_replicated_model_is_one_summary_row_averaged_over_its_seeds():
    from cofitune.evidence.tables import model_rows

    rows = [{"candidate": "base", "model": "base", "spe": 0.0, "ver": 60.0, "uni": 60.0, "kl_base": 0.0, "train_wall_seconds": 0.0},
            {"candidate": "m", "model": "m", "spe": 20.0, "ver": 50.0, "uni": 70.0, "kl_base": 0.1, "train_wall_seconds": 10.0, "seed": 1},
            {"candidate": "m_seed2", "model": "m", "spe": 30.0, "ver": 54.0, "uni": 84.0, "kl_base": 0.3, "train_wall_seconds": 12.0,
             "seed": 2}]
    base, m = model_rows(rows)
    assert base["n_seeds"] == 1 and base["candidate"] == "base"
    assert m["candidate"] == "m" and m["n_seeds"] == 2 and m["seed"] == 1
    assert (m["spe"], m["ver"], m["uni"], m["kl_base"], m["train_wall_seconds"]) == (25.0, 52.0, 77.0, pytest.approx(0.2), 11.0)
