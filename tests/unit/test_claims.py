"""Claims: which comparisons a run supports, their paired intervals (checked against an independent
computation on a hand-made table) and verdicts that never state a direction the interval does not carry."""

from __future__ import annotations

import numpy as np
import pytest

from cofitune.claims import Claim, claims_for, claims_markdown, claims_table, verdict
from cofitune.scores import paired_difference_intervals, resampled_scores

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


def test_verdicts_are_decided_only_when_the_interval_excludes_zero():
    assert verdict(0.5, 3.0) == "higher" and verdict(-3.0, -0.1) == "lower"
    assert verdict(-1.0, 2.0) == verdict(0.0, 2.0) == verdict(0.0, 0.0) == "undecided"


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
    got = paired_difference_intervals(resampled_scores(scores, ["good", "bad", "twin"], ["s"], {"g": ["v"]}, "plain"),
                                      [("good", "bad"), ("good", "twin")])
    assert verdict(*got[("good", "bad")]["uni"]) == "higher" and got[("good", "twin")]["uni"] == (0.0, 0.0)


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
    intervals = {(c.model, c.reference): {"spe": (-1.0, 2.0), "ver": (0.5, 4.0), "uni": (-9.0, -0.2)} for c in claims}
    table = claims_table(ROWS, claims, intervals)
    assert table.num_rows == 3 * len(claims)
    fine = [r for r in table.to_pylist() if r["claim"] == "fine level"]
    assert [(r["metric"], r["diff"], r["verdict"]) for r in fine] == [("spe", -4.0, "undecided"), ("ver", 4.0, "higher"),
                                                                      ("uni", 0.0, "lower")]
    assert (fine[0]["model_seeds"], fine[0]["reference_seeds"]) == (2, 1)
    text = claims_markdown(table)
    assert "- fine level: CoFiTune vs node 0.25-0.75_mha+ffn (2 vs 1 seed(s)): Spe. -4.0 [-1.0, +2.0] undecided; Ver. +4.0 [+0.5, +4.0] higher" in text
