"""Result tables as Arrow: one row per evaluated model, the summary with its intervals, the search trace.

Column meanings are documented in the README ("Outputs"); fixed columns come first, then the
score columns (0-100), whose names carry the prompt format, the group and the task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from cofitune.evaluation.scores import candidate_scores
from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.provenance import config_hash, package_versions
from cofitune.infra.records import EvalRecord, LevelDecision, TrainRecord
from cofitune.methods.candidates import BASE_ID, parse_replicate
from cofitune.methods.recipes import Method

FIXED_SCHEMA = pa.schema(
    [
        ("candidate", pa.string()),
        ("model", pa.string()),  # the model a row is a replicate of (its own id when not a replicate)
        ("method", pa.string()),
        ("layer_range", pa.string()),
        ("layer_indices", pa.list_(pa.int32())),
        ("module_set", pa.string()),
        ("softmask", pa.bool_()),
        ("mask_control", pa.string()),
        ("softmask_apply", pa.string()),
        ("trainable_params", pa.int64()),
        ("trainable_fraction", pa.float64()),
        ("learning_rate", pa.float64()),
        ("train_steps", pa.int64()),
        ("train_input_tokens", pa.int64()),
        ("train_target_tokens", pa.int64()),
        ("train_wall_seconds", pa.float64()),
        ("final_loss", pa.float64()),
        ("spe", pa.float64()),
        ("ver", pa.float64()),
        ("uni", pa.float64()),
        ("kl_base", pa.float64()),
        ("rank_format", pa.string()),
        ("eval_split", pa.string()),  # select (a search node's run) or confirm (a reported model)
        ("eval_batch_size", pa.int64()),
        ("eval_wall_seconds", pa.float64()),
        ("seed", pa.int64()),
        ("config_hash", pa.string()),
        ("versions", pa.string()),
    ]
)

def candidate_row(evaluated: EvalRecord, trained: TrainRecord, evaluation: EvaluationSection, config: Mapping[str, Any]) -> dict[str, Any]:
    scores = candidate_scores(evaluated.metrics, evaluation.speciality, evaluation.groups, evaluation.formats, evaluation.rank_format)
    return {
        "candidate": evaluated.candidate,
        "model": parse_replicate(evaluated.candidate)[0],
        "method": trained.method,
        "layer_range": trained.layer_range,
        "layer_indices": trained.layer_indices,
        "module_set": trained.module_set,
        "softmask": trained.softmask,
        "mask_control": trained.mask_control,
        "softmask_apply": trained.softmask_apply,
        "trainable_params": trained.trainable_params,
        "trainable_fraction": trained.trainable_params / evaluated.total_params,
        "learning_rate": trained.learning_rate,
        "train_steps": trained.steps,
        "train_input_tokens": trained.input_tokens,
        "train_target_tokens": trained.target_tokens,
        "train_wall_seconds": trained.wall_seconds,
        "final_loss": trained.final_loss,  # null for the base model and Wise-FT
        "kl_base": evaluated.kl_base,  # forgetting signal: KL(base || model) per token on the importance data
        "rank_format": evaluation.rank_format,
        "eval_split": evaluated.split,
        "eval_batch_size": evaluated.batch_size,
        "eval_wall_seconds": evaluated.wall_seconds,
        "seed": trained.seed,  # the training seed (a replicate's own; Wise-FT: its full SFT's)
        "config_hash": config_hash(config),
        "versions": json.dumps(package_versions(), sort_keys=True),
        **scores,
    }


def candidates_table(records: Sequence[tuple[EvalRecord, TrainRecord]], evaluation: EvaluationSection, config: Mapping[str, Any]) -> pa.Table:
    """One row per evaluation (a model on one item split): what it trained, its cost, its scores
    (fixed columns first). The chosen search node has two: select and confirm."""
    rows = [candidate_row(evaluated, trained, evaluation, config) for evaluated, trained in records]
    score_columns = sorted({k for row in rows for k in row} - set(FIXED_SCHEMA.names))
    schema = FIXED_SCHEMA
    for name in score_columns:
        schema = schema.append(pa.field(name, pa.float64()))
    return pa.Table.from_pylist(rows, schema=schema)


def importance_table(per_source: Mapping[str, Any], combined: Mapping[str, Any]) -> pa.Table:
    """Long form: one row per (source, layer, unit type, unit); the combined rows have no raw value.
    `per_source`: source -> its `cofitune.fine.importance_file.Importance`; `combined`: unit type -> values."""
    names = ("source", "layer", "unit_type", "unit_index", "raw", "normalised", "split_half_rho")
    columns: dict[str, list] = {k: [] for k in names}

    def add(source: str, unit_type: str, normalised, raw, rho) -> None:
        layers, units = normalised.shape
        columns["source"] += [source] * (layers * units)
        columns["layer"] += [layer for layer in range(layers) for _ in range(units)]
        columns["unit_type"] += [unit_type] * (layers * units)
        columns["unit_index"] += list(range(units)) * layers
        columns["raw"] += raw.flatten().tolist() if raw is not None else [None] * (layers * units)
        columns["normalised"] += normalised.flatten().tolist()
        # the layer's split-half reliability, on each of its units' rows (None: not measured, or combined)
        columns["split_half_rho"] += [None if rho is None or math.isnan(rho[layer]) else float(rho[layer])
                                      for layer in range(layers) for _ in range(units)]

    for source, importance in per_source.items():
        for unit_type, normalised in importance.norm.items():
            add(source, unit_type, normalised, importance.raw[unit_type], importance.split_half.get(unit_type))
    for unit_type, normalised in combined.items():
        add("combined", unit_type, normalised, None, None)
    schema = pa.schema([("source", pa.string()), ("layer", pa.int32()), ("unit_type", pa.string()),
                        ("unit_index", pa.int32()), ("raw", pa.float64()), ("normalised", pa.float64()),
                        ("split_half_rho", pa.float64())])
    return pa.Table.from_pydict(columns, schema=schema)


INTERVAL_METRICS = ("spe", "ver", "uni", "ver_retention", "spe_gain_ratio")


def pareto_front(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """Candidates no other candidate beats on both Spe. and Ver. (and equals on neither)."""
    front = set()
    for name, (spe, ver) in points.items():
        dominated = any(s >= spe and v >= ver and (s, v) != (spe, ver) for other, (s, v) in points.items() if other != name)
        if not dominated:
            front.add(name)
    return front


@dataclass(frozen=True)
class SplitReport:
    """Which items the summary's numbers come from, and the search's choice on both splits."""
    items: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # split -> task -> items (`splits.split_item_counts`)
    chosen_node: str | None = None  # the last search level's kept node
    select_uni: float | None = None  # its Uni. on the select items, mean over its runs scored on both splits
    confirm_uni: float | None = None  # the same runs' Uni. on confirm
    runs: int = 0

    def counts(self, split: str) -> tuple[int | None, int | None]:
        """(fewest, most) items per task in `split` (None, None when the split was not evaluated)."""
        values = list(self.items.get(split, {}).values())
        return (min(values), max(values)) if values else (None, None)


def search_choice_on_both(levels: Sequence[LevelDecision], evaluations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The node the last search level kept, and the mean Uni. on select and on confirm of its
    training runs that were scored on both (the same runs: only the items differ)."""
    if not levels:
        return {}
    node = max(levels, key=lambda d: d.level).chosen_id
    uni = {split: {r["candidate"]: r["uni"] for r in evaluations if r["model"] == node and r["eval_split"] == split}
           for split in ("select", "confirm")}
    runs = sorted(set(uni["select"]) & set(uni["confirm"]))
    if not runs:
        return {"chosen_node": node}
    mean = {split: sum(uni[split][r] for r in runs) / len(runs) for split in uni}
    return {"chosen_node": node, "select_uni": mean["select"], "confirm_uni": mean["confirm"], "runs": len(runs)}


def summary_table(candidates: pa.Table, intervals: Mapping[str, Mapping[str, tuple[float, float]]], final_id: str | None,
                  report: SplitReport | None = None) -> pa.Table:
    """One row per evaluated model: scores with 95% intervals, retention and gain, cost, Pareto flag,
    the items they come from and, on the chosen search node's row, its selection optimism."""
    report = report or SplitReport()
    rows = model_rows(candidates.to_pylist())
    by_id = {r["candidate"]: r for r in rows}
    base, full = by_id["base"], by_id.get("full_sft")
    front = pareto_front({r["candidate"]: (r["spe"], r["ver"]) for r in rows})
    (confirm_min, confirm_max), (select_min, select_max) = report.counts("confirm"), report.counts("select")
    out = []
    for r in rows:
        label = "CoFiTune" if r["candidate"] == final_id else Method(r["method"]).recipe.display(r)
        gain = None
        if full is not None and full["spe"] != base["spe"]:
            gain = (r["spe"] - base["spe"]) / (full["spe"] - base["spe"])
        chosen = r["candidate"] == report.chosen_node and report.select_uni is not None
        row = {
            "candidate": r["candidate"], "label": label, "method": r["method"], "layer_range": r["layer_range"],
            "module_set": r["module_set"], "softmask": r["softmask"], "trainable_params": r["trainable_params"],
            "trainable_fraction": r["trainable_fraction"], "learning_rate": r["learning_rate"],
            "train_wall_seconds": r["train_wall_seconds"],
            "spe": r["spe"], "ver": r["ver"], "uni": r["uni"], "kl_base": r["kl_base"],
            "ver_retention": r["ver"] / base["ver"] if base["ver"] else None, "spe_gain_ratio": gain,
            "pareto": r["candidate"] in front, "cofitune": r["candidate"] == final_id, "n_seeds": r["n_seeds"],
            "eval_split": r.get("eval_split"), "confirm_items_min": confirm_min, "confirm_items_max": confirm_max,
            "select_items_min": select_min, "select_items_max": select_max, "search_chose": chosen,
            "uni_select": report.select_uni if chosen else None,
            "uni_confirm_same_runs": report.confirm_uni if chosen else None, "selection_runs": report.runs if chosen else None,
            "selection_optimism": report.select_uni - report.confirm_uni if chosen else None,
        }
        for metric in INTERVAL_METRICS:
            low, high = intervals.get(r["candidate"], {}).get(metric, (None, None))
            row[f"{metric}_lo"] = None if low is None or math.isnan(low) else low
            row[f"{metric}_hi"] = None if high is None or math.isnan(high) else high
        out.append(row)
    out.sort(key=lambda row: (-row["uni"], row["candidate"]))
    return pa.Table.from_pylist(out, schema=_summary_schema(out))


def _summary_schema(rows: Sequence[Mapping[str, Any]]) -> pa.Schema | None:
    """Inferred, except the columns that may be all null in a run (no search: no select items)."""
    if not rows:
        return None
    typed = {"uni_select": pa.float64(), "uni_confirm_same_runs": pa.float64(), "selection_runs": pa.int64(),
             "selection_optimism": pa.float64(), "confirm_items_min": pa.int64(),
             "confirm_items_max": pa.int64(), "select_items_min": pa.int64(), "select_items_max": pa.int64(),
             "eval_split": pa.string(), "kl_base": pa.float64(), "spe_gain_ratio": pa.float64(),
             **{f"{m}_{end}": pa.float64() for m in INTERVAL_METRICS for end in ("lo", "hi")}}
    inferred = pa.Table.from_pylist(list(rows)).schema
    return pa.schema([pa.field(name, typed.get(name, inferred.field(name).type)) for name in inferred.names])


AVERAGED_OVER_SEEDS = ("spe", "ver", "uni", "kl_base", "train_wall_seconds")


def model_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: a replicated model's scores averaged over its seeds, the rest from its
    first (plain-id) run, and `n_seeds`."""
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row.get("model") or row["candidate"], []).append(row)
    out = []
    for model, runs in by_model.items():
        merged = {**runs[0], "candidate": model, "n_seeds": len(runs)}
        for key in AVERAGED_OVER_SEEDS:
            values = [r[key] for r in runs if r.get(key) is not None]
            merged[key] = sum(values) / len(values) if values else None
        out.append(merged)
    return out


def search_trace_table(levels: Sequence[LevelDecision]) -> pa.Table:
    """Level, node, parent (the node kept one level up), scores, and whether the level kept it."""
    rows, parent = [], ""
    for decision in sorted(levels, key=lambda d: d.level):
        for c in decision.contenders:
            rows.append({"level": decision.level, "mode": decision.mode, "node": c["node"], "parent": parent,
                         "layer_range": c["layer_range"], "module_set": c["module_set"], "spe": c["spe"], "ver": c["ver"],
                         "uni": c["uni"], "n_seeds": c.get("n_seeds", 1), "chosen": c["node"] == decision.chosen_id,
                         **{k: c.get(k) for k in CONFIDENCE_COLUMNS}, "reason": decision.reason})
        parent = decision.chosen_id
    schema = pa.schema([("level", pa.int32()), ("mode", pa.string()), ("node", pa.string()), ("parent", pa.string()),
                        ("layer_range", pa.string()), ("module_set", pa.string()), ("spe", pa.float64()), ("ver", pa.float64()),
                        ("uni", pa.float64()), ("n_seeds", pa.int64()), ("chosen", pa.bool_()), ("p_best", pa.float64()), ("diff", pa.float64()),
                        ("diff_lo", pa.float64()), ("diff_hi", pa.float64()), ("trainable_params", pa.int64()), ("reason", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


CONFIDENCE_COLUMNS = ("p_best", "diff", "diff_lo", "diff_hi", "trainable_params")


def display_name(row: Mapping[str, Any]) -> str:
    """How the summary names a model: its label, or 'node <id>' for a search node."""
    if Method(row["method"]).recipe.is_search_node and not row.get("cofitune"):
        return f"node {row['candidate']}"
    return row["label"]


def full_sft_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Full SFT at each of its learning rates, lowest first (a curve in the Spe.-Ver. plane)."""
    full = [r for r in rows if r["method"] == Method.FULL_SFT.value]
    return sorted(full, key=lambda r: (r["learning_rate"] is None, r["learning_rate"] or 0.0))


def matched_full_sft(rows: Sequence[Mapping[str, Any]], spe: float) -> Mapping[str, Any] | None:
    """The full-SFT run whose Spe. is closest to `spe` (ties: the lower learning rate)."""
    full = full_sft_rows(rows)
    return min(full, key=lambda r: abs(r["spe"] - spe)) if full else None


def kl_forgetting_correlation(rows: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """(Spearman rho of KL(base || model) against the Ver. drop, number of models) over the trained models."""
    from cofitune.infra.stats import spearman

    base = next((r for r in rows if r["candidate"] == BASE_ID), None)
    pairs = [(r["kl_base"], base["ver"] - r["ver"]) for r in rows if base and r is not base and r.get("kl_base") is not None]
    return (spearman(*zip(*pairs, strict=True)), len(pairs)) if len(pairs) >= 3 else (float("nan"), 0)
