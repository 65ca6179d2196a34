"""Claims: which comparisons a run supports, their paired intervals (checked against an independent
computation on a hand-made table) and verdicts that never state a direction the interval does not carry."""

from __future__ import annotations

import numpy as np
import pytest

from cofitune.evaluation.scores import paired_difference_intervals, paired_difference_tests, resampled_scores
from cofitune.evidence.claims import FAMILY_ALPHA, Claim, claims_for, claims_table, verdict
from cofitune.evidence.markdown import claims_markdown
from cofitune.infra.stats import bootstrap_p_value, holm

FINAL = "0.25-0.75_mha+ffn_softmask"


def _row(candidate, method, spe, ver, lr=None, label=None, n_seeds=1):
    return {"candidate": candidate, "method": method, "spe": spe, "ver": ver, "uni": spe + ver, "learning_rate": lr,
            "label": label or candidate, "n_seeds": n_seeds, "cofitune": label == "CoFiTune"}


ROWS = [_row("base", "base", 0.0, 60.0, label="Base"), _row("full_sft", "full_sft", 40.0, 45.0, 1e-3, "Full SFT", 2),
        _row("full_sft_lr0.0001", "full_sft", 22.0, 55.0, 1e-4, "Full SFT (lr 0.0001)"),
        _row(FINAL, "region+softmask", 20.0, 58.0, 1e-3, "CoFiTune", 2), _row("0.25-0.75_mha+ffn", "region", 24.0, 54.0, 1e-3)]


def test_a_run_claims_what_its_models_can_support():
    assert claims_for(ROWS, FINAL) == [
        Claim("forgetting", "full_sft", "base"), Claim("vs full SFT", FINAL, "full_sft"),
        Claim("matched Spe.", FINAL, "full_sft_lr0.0001"), Claim("fine level", FINAL, "0.25-0.75_mha+ffn"),
        Claim("vs base", FINAL, "base")]
    without = [r for r in ROWS if r["candidate"] not in ("full_sft_lr0.0001", "0.25-0.75_mha+ffn")]
    assert [c.name for c in claims_for(without, FINAL)] == ["forgetting", "vs full SFT", "vs base"]  # matched = default: once
    assert [c.name for c in claims_for(ROWS, None)] == ["forgetting"]  # no search: no CoFiTune model
    controls = [*ROWS, _row(f"{FINAL}-uniform", "region+mask_control", 21.0, 56.0), _row(f"{FINAL}-shuffled", "region+mask_control", 21.0, 55.0)]
    assert [c for c in claims_for(controls, FINAL) if c.name.startswith("fine level")] == [
        Claim("fine level", FINAL, "0.25-0.75_mha+ffn"), Claim("fine level, uniform control", FINAL, f"{FINAL}-uniform"),
        Claim("fine level, shuffled control", FINAL, f"{FINAL}-shuffled")]
    unmasked_final = [*ROWS[:3], _row("0.25-0.75_mha+ffn", "region", 24.0, 54.0)]
    assert "fine level" not in [c.name for c in claims_for(unmasked_final, "0.25-0.75_mha+ffn")]


def test_verdicts_are_decided_only_when_the_family_adjusted_p_value_is_small_enough():
    assert verdict(2.0, 0.01) == "higher" and verdict(-3.0, 0.049) == "lower"
    assert verdict(2.0, 0.051) == verdict(-3.0, 1.0) == verdict(0.0, 0.0) == "undecided"


def test_holm_adjusts_step_down_and_keeps_the_order():
    # sorted: 0.01 x 4, 0.02 x 3, 0.03 x 2 (0.06), 0.04 x 1 (running max 0.06)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_bootstrap_p_values_count_both_sides_and_never_reach_zero():
    assert bootstrap_p_value([1.0] * 999) == pytest.approx(2.0 / 1000.0)
    assert bootstrap_p_value([0.0] * 100) == 1.0  # identical models
    assert bootstrap_p_value([-1.0] * 50 + [1.0] * 50) == 1.0
    assert bootstrap_p_value([-1.0] * 10 + [1.0] * 89) == pytest.approx(2.0 * 11.0 / 100.0)


def _items(scores_by_candidate):
    """(candidate, format, task) -> doc -> score, for one speciality task 's' and one versatility task 'v'."""
    return {(c, "plain", task): dict(enumerate(values)) for c, per_task in scores_by_candidate.items() for task, values in per_task.items()}


def test_paired_intervals_equal_an_independent_bootstrap_of_item_differences():
    rng = np.random.default_rng(0)
    a = {"s": rng.integers(0, 2, 30).astype(float), "v": rng.integers(0, 2, 20).astype(float)}
    b = {"s": rng.integers(0, 2, 30).astype(float), "v": rng.integers(0, 2, 20).astype(float)}
    resampled = resampled_scores(_items({"a": a, "b": b}), ["a", "b"], ["s"], {"g": ["v"]}, "plain", n_resamples=500, seed=7)
    got = paired_difference_intervals(resampled, [("a", "b")])[("a", "b")]
    draws = np.random.default_rng(7)  # the same stream: one draw of items per task, tasks sorted
    spe_draw, ver_draw = draws.integers(0, 30, (500, 30)), draws.integers(0, 20, (500, 20))
    spe = 100.0 * (a["s"] - b["s"])[spe_draw].mean(axis=1)
    ver = 100.0 * (a["v"] - b["v"])[ver_draw].mean(axis=1)
    for metric, diffs in (("spe", spe), ("ver", ver), ("uni", spe + ver)):
        assert got[metric] == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))


def test_a_model_better_on_every_item_is_decided_and_identical_models_are_not():
    ones, zeros = {"s": [1.0] * 10 + [0.0] * 10, "v": [1.0] * 15 + [0.0] * 5}, {"s": [0.0] * 20, "v": [0.0] * 15 + [0.0] * 5}
    scores = _items({"good": ones, "bad": zeros, "twin": ones})
    got = paired_difference_tests(resampled_scores(scores, ["good", "bad", "twin"], ["s"], {"g": ["v"]}, "plain"),
                                  [("good", "bad"), ("good", "twin")])
    assert got[("good", "bad")]["uni"][0] > 0.0 and got[("good", "bad")]["uni"][2] == pytest.approx(2.0 / 1001.0)
    assert got[("good", "twin")]["uni"] == (0.0, 0.0, 1.0)


def test_replicates_widen_the_interval_by_their_seed_to_seed_spread():
    """Two seeds that disagree: the hierarchical resample draws seeds too, so the interval is wider
    than either seed's alone against the same reference."""
    agree = {"s": [1.0] * 10 + [0.0] * 10, "v": [1.0] * 10}
    seed1, seed2 = {"s": [1.0] * 18 + [0.0] * 2, "v": [1.0] * 10}, {"s": [1.0] * 4 + [0.0] * 16, "v": [1.0] * 10}
    scores = _items({"ref": agree, "m": seed1, "m_seed2": seed2})
    pooled = paired_difference_intervals(resampled_scores(scores, ["ref", "m", "m_seed2"], ["s"], {"g": ["v"]}, "plain",
                                                          replicates={"ref": ["ref"], "m": ["m", "m_seed2"]}), [("m", "ref")])
    alone = paired_difference_intervals(resampled_scores(scores, ["ref", "m"], ["s"], {"g": ["v"]}, "plain"), [("m", "ref")])
    pooled, alone = pooled[("m", "ref")]["spe"], alone[("m", "ref")]["spe"]
    assert pooled[1] - pooled[0] > alone[1] - alone[0]


def test_the_claims_table_and_its_lines():
    claims = claims_for(ROWS, FINAL)
    # 15 rows: the smallest p-value survives Holm (0.001 x 15), an interval that excludes 0 with p 0.02 does not
    tests = {(c.model, c.reference): {"spe": (-1.0, 2.0, 0.6), "ver": (0.5, 4.0, 0.001), "uni": (-9.0, -0.2, 0.02)} for c in claims}
    table = claims_table(ROWS, claims, tests)
    assert table.num_rows == 3 * len(claims) == 15
    fine = [r for r in table.to_pylist() if r["claim"] == "fine level"]
    assert [(r["metric"], r["diff"], r["verdict"]) for r in fine] == [("spe", -4.0, "undecided"), ("ver", 4.0, "higher"),
                                                                      ("uni", 0.0, "undecided")]
    assert [r["p_holm"] for r in fine] == pytest.approx([1.0, 0.015, 0.2])
    assert (fine[0]["model_seeds"], fine[0]["reference_seeds"]) == (2, 1)
    text = claims_markdown(table)
    assert ("- fine level: CoFiTune vs node 0.25-0.75_mha+ffn (2 vs 1 seed(s)): Spe. -4.0 [-1.0, +2.0] p 1.000 undecided; "
            "Ver. +4.0 [+0.5, +4.0] p 0.015 higher") in text
    assert "Holm-adjusted over the 15 rows" in text


def _simulated_claims_table(rng, final_p=0.5, items=40, resamples=2000):
    """A run with the claims of a real run, two tasks of `items` items: every model right on each
    item with probability 0.5, the CoFiTune model with `final_p`; returns its claims table.
    2,000 resamples: the smallest p-value (2 / 2001) survives Holm over the 15 rows."""
    names = [r["candidate"] for r in ROWS]
    scores = {(m, "plain", task): dict(enumerate((rng.random(items) < (final_p if m == FINAL else 0.5)).astype(float)))
              for m in names for task in ("s", "v")}
    resampled = resampled_scores(scores, names, ["s"], {"g": ["v"]}, "plain", n_resamples=resamples, seed=int(rng.integers(1 << 30)))
    rows = [{**r, "spe": 100.0 * np.mean(list(scores[(r["candidate"], "plain", "s")].values())),
             "ver": 100.0 * np.mean(list(scores[(r["candidate"], "plain", "v")].values()))} for r in ROWS]
    rows = [{**r, "uni": r["spe"] + r["ver"]} for r in rows]
    claims = claims_for(rows, FINAL)
    return claims_table(rows, claims, paired_difference_tests(resampled, [(c.model, c.reference) for c in claims]))


def test_when_every_model_is_equal_no_claim_is_decided_more_often_than_the_family_error_rate():
    """200 simulated runs of 15 claim rows each, all true zeros: the share of runs with any decided
    row (the family-wise error) stays at or below 5% (plus three standard errors of 200 runs), while
    the per-row intervals alone would decide something in far more of them. The same procedure
    decides a true effect (the CoFiTune model right on 85% of items, the others on 50%) in most runs."""
    rng = np.random.default_rng(20261202)
    runs = [_simulated_claims_table(rng).to_pylist() for _ in range(200)]
    any_decided = np.mean([any(r["verdict"] != "undecided" for r in rows) for rows in runs])
    any_interval = np.mean([any(not r["diff_lo"] <= 0.0 <= r["diff_hi"] for r in rows) for rows in runs])
    assert any_decided <= FAMILY_ALPHA + 3 * np.sqrt(FAMILY_ALPHA * (1 - FAMILY_ALPHA) / 200)
    assert any_interval > 3 * FAMILY_ALPHA  # what the table would say without the family correction
    strong = [_simulated_claims_table(rng, final_p=0.85).to_pylist() for _ in range(20)]
    decided = [np.mean([r["verdict"] == "higher" for r in rows if r["claim"] == "vs base" and r["metric"] == "uni"]) for rows in strong]
    assert np.mean(decided) >= 0.9


def test_the_search_is_compared_with_the_best_fixed_rule_by_uni():
    rules = {"0.25-0.5_ffn": "paper", "0.25-0.75_mha+ffn": "middle"}
    rows = [*ROWS, _row("0.25-0.5_ffn", "region", 30.0, 50.0)]  # Uni. 80 beats the middle block's 78
    assert claims_for(rows, FINAL, rules)[-1] == Claim("search vs best fixed rule (paper)", "0.25-0.75_mha+ffn", "0.25-0.5_ffn")
    # the searched region is the unmasked final model; the middle block is that very region: compared with itself
    assert claims_for(ROWS, FINAL, rules)[-1] == Claim("search vs best fixed rule (middle)", "0.25-0.75_mha+ffn", "0.25-0.75_mha+ffn")
    unmasked_final = [r for r in rows if r["candidate"] != FINAL]
    assert claims_for(unmasked_final, "0.25-0.75_mha+ffn", rules)[-1].model == "0.25-0.75_mha+ffn"
    assert "search vs best fixed rule" not in " ".join(c.name for c in claims_for(ROWS, FINAL))  # no rule trained
    assert [c.name for c in claims_for(rows, None, rules)] == ["forgetting"]  # no search, nothing to compare
