"""The run's central claims as paired differences with intervals, decided or not.

A claim compares a model with a reference on Spe., Ver. and Uni.: the point difference (of the
seed-averaged scores), a percentile interval and a two-sided p-value from the paired hierarchical
bootstrap (seeds, then items; `scores.paired_difference_tests`). A run makes all its claims at once,
so they are tested as one family: Holm's step-down correction over every (claim, metric) row, at
family level FAMILY_ALPHA. A difference is *decided* (higher or lower) only when its Holm-adjusted
p-value is at most FAMILY_ALPHA: the chance that any decided row of the table points the wrong way
from a true zero is then at most 5%. Otherwise it is undecided, even where its own 95% interval
excludes 0 (that interval is per row, not for the family). The claims:
  forgetting      full SFT vs the base model: does full SFT lose versatility?
  vs full SFT     CoFiTune vs full SFT at the default learning rate
  matched Spe.    CoFiTune vs the full-SFT run (over its learning rates) of closest Spe.
  fine level      CoFiTune vs the same region trained without the soft-mask
  fine level, <c> control
                  CoFiTune vs its region soft-masked with uniform (each layer's mean factor) or
                  shuffled importances: the same average rate, without the selectivity. Only this
                  says that *which* units are slowed matters, not merely that the region trains slower
  vs base         CoFiTune vs the base model: what the chosen region costs in versatility
  search vs best fixed rule (<rule>)
                  the searched region (unmasked, as the search trained it) vs the best by Uni. of the
                  regions a user would pick without a search (`baselines.fixed_rules`): whether the
                  search's trainings bought anything. The best rule is picked on the reported items
                  themselves, which favours it: a 'higher' verdict for the search is conservative
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cofitune.evidence.tables import display_name, matched_full_sft
from cofitune.methods.candidates import BASE_ID, CONTROLS, control_region, unmasked_region
from cofitune.methods.recipes import Method

CLAIMS_FILE = "claims.parquet"  # beside summary.parquet
METRICS = ("spe", "ver", "uni")
METRIC_NAMES = {"spe": "Spe.", "ver": "Ver.", "uni": "Uni."}


@dataclass(frozen=True)
class Claim:
    name: str
    model: str
    reference: str


def claims_for(rows: Sequence[Mapping[str, Any]], final_id: str | None, fixed_rules: Mapping[str, str] | None = None) -> list[Claim]:
    """The claims this run's models can support (summary rows; `final_id` is the CoFiTune model;
    `fixed_rules`: candidate id -> rule name of the fixed-rule baselines)."""

    ids = {r["candidate"] for r in rows}
    full = Method.FULL_SFT.value
    claims = [Claim("forgetting", full, BASE_ID)] if full in ids else []
    if final_id is None or final_id not in ids:
        return claims
    if full in ids:
        claims.append(Claim("vs full SFT", final_id, full))
        final_spe = next(r["spe"] for r in rows if r["candidate"] == final_id)
        matched = matched_full_sft(rows, final_spe)
        if matched is not None and matched["candidate"] != full:
            claims.append(Claim("matched Spe.", final_id, matched["candidate"]))
    unmasked = unmasked_region(final_id)
    if unmasked in ids:
        claims.append(Claim("fine level", final_id, unmasked))
    for control in CONTROLS:
        if control_region(final_id, control) in ids:
            claims.append(Claim(f"fine level, {control} control", final_id, control_region(final_id, control)))
    claims.append(Claim("vs base", final_id, BASE_ID))
    return claims + search_vs_fixed_rules(rows, final_id, fixed_rules or {})


def search_vs_fixed_rules(rows: Sequence[Mapping[str, Any]], final_id: str, fixed_rules: Mapping[str, str]) -> list[Claim]:
    """The searched region against the best fixed rule by Uni. (none when no rule was trained)."""
    searched = unmasked_region(final_id) or final_id
    ids = {r["candidate"] for r in rows}
    rules = [r for r in rows if r["candidate"] in fixed_rules]
    if searched not in ids or not rules:
        return []
    best = max(rules, key=lambda r: (r["uni"], r["candidate"]))
    return [Claim(f"search vs best fixed rule ({fixed_rules[best['candidate']]})", searched, best["candidate"])]


FAMILY_ALPHA = 0.05  # the family-wise error rate of the claims table (Holm)


def claims_table(
    rows: Sequence[Mapping[str, Any]], claims: Sequence[Claim],
    tests: Mapping[tuple[str, str], Mapping[str, tuple[float, float, float]]],
) -> pa.Table:
    """One row per claim and metric: the difference model - reference, its interval, its p-value
    unadjusted and Holm-adjusted over the whole table, the verdict."""
    from cofitune.infra.stats import holm

    by_id = {r["candidate"]: r for r in rows}
    out = []
    for claim in claims:
        model, reference = by_id[claim.model], by_id[claim.reference]
        for metric in METRICS:
            low, high, p_value = tests[(claim.model, claim.reference)][metric]
            out.append({
                "claim": claim.name, "model": claim.model, "model_label": display_name(model), "reference": claim.reference,
                "reference_label": display_name(reference), "metric": metric, "diff": model[metric] - reference[metric],
                "diff_lo": low, "diff_hi": high, "p_value": p_value,
                "model_seeds": model.get("n_seeds") or 1, "reference_seeds": reference.get("n_seeds") or 1,
            })
    for row, adjusted in zip(out, holm([r["p_value"] for r in out]), strict=True):
        row["p_holm"] = adjusted
        row["verdict"] = verdict(row["diff"], adjusted)
    return pa.Table.from_pylist(out, schema=SCHEMA)


SCHEMA = pa.schema([("claim", pa.string()), ("model", pa.string()), ("model_label", pa.string()), ("reference", pa.string()),
                    ("reference_label", pa.string()), ("metric", pa.string()), ("diff", pa.float64()), ("diff_lo", pa.float64()),
                    ("diff_hi", pa.float64()), ("p_value", pa.float64()), ("p_holm", pa.float64()), ("verdict", pa.string()),
                    ("model_seeds", pa.int64()), ("reference_seeds", pa.int64())])


def verdict(diff: float, p_holm: float, alpha: float = FAMILY_ALPHA) -> str:
    """'higher' or 'lower' when the family-adjusted p-value is at most `alpha`, else 'undecided'."""
    if p_holm > alpha or diff == 0.0:
        return "undecided"
    return "higher" if diff > 0.0 else "lower"
