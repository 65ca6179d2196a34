"""The run's central claims as paired differences with intervals, decided or not.

A claim compares a model with a reference on Spe., Ver. and Uni.: the point difference (of the
seed-averaged scores) and a percentile interval from the paired hierarchical bootstrap (seeds, then
items; `scores.paired_difference_intervals`). A difference is *decided* when its interval excludes
0, and reported as undecided otherwise, so a table never states a direction the evidence does not
carry. The claims:
  forgetting      full SFT vs the base model: does full SFT lose versatility?
  vs full SFT     CoFiTune vs full SFT at the default learning rate
  matched Spe.    CoFiTune vs the full-SFT run (over its learning rates) of closest Spe.
  fine level      CoFiTune vs the same region trained without the soft-mask
  fine level, <c> control
                  CoFiTune vs its region soft-masked with uniform (each layer's mean factor) or
                  shuffled importances: the same average rate, without the selectivity. Only this
                  says that *which* units are slowed matters, not merely that the region trains slower
  vs base         CoFiTune vs the base model: what the chosen region costs in versatility
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cofitune.candidates import BASE_ID, CONTROLS, control_region, unmasked_region
from cofitune.methods import Method

CLAIMS_FILE = "claims.parquet"  # beside summary.parquet
METRICS = ("spe", "ver", "uni")
METRIC_NAMES = {"spe": "Spe.", "ver": "Ver.", "uni": "Uni."}


@dataclass(frozen=True)
class Claim:
    name: str
    model: str
    reference: str


def claims_for(rows: Sequence[Mapping[str, Any]], final_id: str | None) -> list[Claim]:
    """The claims this run's models can support (summary rows; `final_id` is the CoFiTune model)."""
    from cofitune.tables import matched_full_sft

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
    return claims


def claims_table(
    rows: Sequence[Mapping[str, Any]], claims: Sequence[Claim], intervals: Mapping[tuple[str, str], Mapping[str, tuple[float, float]]],
) -> pa.Table:
    """One row per claim and metric: the difference model - reference, its interval, the verdict."""
    from cofitune.tables import display_name

    by_id = {r["candidate"]: r for r in rows}
    out = []
    for claim in claims:
        model, reference = by_id[claim.model], by_id[claim.reference]
        for metric in METRICS:
            low, high = intervals[(claim.model, claim.reference)][metric]
            out.append({
                "claim": claim.name, "model": claim.model, "model_label": display_name(model), "reference": claim.reference,
                "reference_label": display_name(reference), "metric": metric, "diff": model[metric] - reference[metric],
                "diff_lo": low, "diff_hi": high, "verdict": verdict(low, high),
                "model_seeds": model.get("n_seeds") or 1, "reference_seeds": reference.get("n_seeds") or 1,
            })
    return pa.Table.from_pylist(out, schema=SCHEMA)


SCHEMA = pa.schema([("claim", pa.string()), ("model", pa.string()), ("model_label", pa.string()), ("reference", pa.string()),
                    ("reference_label", pa.string()), ("metric", pa.string()), ("diff", pa.float64()), ("diff_lo", pa.float64()),
                    ("diff_hi", pa.float64()), ("verdict", pa.string()), ("model_seeds", pa.int64()), ("reference_seeds", pa.int64())])


def verdict(low: float, high: float) -> str:
    """'higher' or 'lower' when the interval excludes 0, else 'undecided'."""
    if low > 0.0:
        return "higher"
    if high < 0.0:
        return "lower"
    return "undecided"


def claims_markdown(table: pa.Table) -> str:
    """One line per claim: each metric's difference, interval and verdict."""
    rows = table.to_pylist()
    if not rows:
        return ""
    lines = ["", "Claims (model minus reference; 95% intervals over seeds and items, paired; decided when the interval "
             "excludes 0):", ""]
    for name in dict.fromkeys(r["claim"] for r in rows):
        parts = [r for r in rows if r["claim"] == name]
        first = parts[0]
        seeds = f"{first['model_seeds']} vs {first['reference_seeds']} seed(s)"
        metrics = "; ".join(f"{METRIC_NAMES[r['metric']]} {r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}] {r['verdict']}"
                            for r in parts)
        lines.append(f"- {name}: {first['model_label']} vs {first['reference_label']} ({seeds}): {metrics}.")
    return "\n".join(lines)
