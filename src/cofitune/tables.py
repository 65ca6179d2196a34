"""Result tables as Arrow: one row per evaluated model, one row per evaluated item.

Column meanings are documented in the README ("Outputs"); fixed columns come first, then the
score columns (0-100), whose names carry the prompt format, the group and the task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from cofitune.provenance import config_hash, package_versions
from cofitune.scores import candidate_scores

FIXED_SCHEMA = pa.schema(
    [
        ("candidate", pa.string()),
        ("method", pa.string()),
        ("layer_range", pa.string()),
        ("layer_indices", pa.list_(pa.int32())),
        ("module_set", pa.string()),
        ("softmask", pa.bool_()),
        ("trainable_params", pa.int64()),
        ("trainable_fraction", pa.float64()),
        ("train_steps", pa.int64()),
        ("train_input_tokens", pa.int64()),
        ("train_target_tokens", pa.int64()),
        ("train_wall_seconds", pa.float64()),
        ("final_loss", pa.float64()),
        ("spe", pa.float64()),
        ("ver", pa.float64()),
        ("uni", pa.float64()),
        ("rank_format", pa.string()),
        ("eval_batch_size", pa.int64()),
        ("eval_limit", pa.float64()),
        ("eval_wall_seconds", pa.float64()),
        ("seed", pa.int64()),
        ("config_hash", pa.string()),
        ("versions", pa.string()),
    ]
)

SAMPLES_SCHEMA = pa.schema(
    [
        ("candidate", pa.string()),
        ("format", pa.string()),
        ("task", pa.string()),
        ("doc_id", pa.int64()),
        ("target", pa.string()),
        ("prediction", pa.string()),
        ("score", pa.float64()),
    ]
)


def candidate_row(
    evaluation_record: Mapping[str, Any],
    train_record: Mapping[str, Any] | None,
    evaluation: Mapping[str, Any],
    config: Mapping[str, Any],
    total_params: int,
) -> dict[str, Any]:
    scores = candidate_scores(
        evaluation_record["metrics"], evaluation["speciality"], evaluation["groups"], evaluation["formats"], evaluation["rank_format"]
    )
    train = train_record or {}
    trainable = int(train.get("trainable_params", 0))
    return {
        "candidate": evaluation_record["candidate"],
        "method": train.get("method", "base"),
        "layer_range": train.get("layer_range", ""),
        "layer_indices": train.get("layer_indices", []),
        "module_set": train.get("module_set", ""),
        "softmask": train.get("softmask", False),
        "trainable_params": trainable,
        "trainable_fraction": trainable / total_params,
        "train_steps": train.get("steps", 0),
        "train_input_tokens": train.get("input_tokens", 0),
        "train_target_tokens": train.get("target_tokens", 0),
        "train_wall_seconds": train.get("wall_seconds", 0.0),
        "final_loss": train.get("final_loss"),  # null for the untrained base model
        "rank_format": evaluation["rank_format"],
        "eval_batch_size": evaluation_record["batch_size"],
        "eval_limit": evaluation_record["limit"],
        "eval_wall_seconds": evaluation_record["wall_seconds"],
        "seed": config["seed"],
        "config_hash": config_hash(config),
        "versions": json.dumps(package_versions(), sort_keys=True),
        **scores,
    }


def candidates_table(
    records: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
    evaluation: Mapping[str, Any],
    config: Mapping[str, Any],
    total_params: int,
) -> pa.Table:
    rows = [candidate_row(ev, tr, evaluation, config, total_params) for ev, tr in records]
    score_columns = sorted({k for row in rows for k in row} - set(FIXED_SCHEMA.names))
    schema = FIXED_SCHEMA
    for name in score_columns:
        schema = schema.append(pa.field(name, pa.float64()))
    return pa.Table.from_pylist(rows, schema=schema)


def samples_table(candidate_id: str, samples: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{"candidate": candidate_id, **s} for s in samples], schema=SAMPLES_SCHEMA)


SUMMARY_COLUMNS = (
    ("candidate", "candidate", "{}"),
    ("layer_range", "layers", "{}"),
    ("module_set", "modules", "{}"),
    ("trainable_fraction", "trained %", "{:.1%}"),
    ("spe", "Spe.", "{:.1f}"),
    ("ver", "Ver.", "{:.1f}"),
    ("uni", "Uni.", "{:.1f}"),
    ("train_wall_seconds", "train s", "{:.0f}"),
)


def markdown_summary(table: pa.Table) -> str:
    """One line per candidate, best Uni. first (ties broken by candidate id)."""
    rows = sorted(table.to_pylist(), key=lambda r: (-r["uni"], r["candidate"]))
    header = "| " + " | ".join(title for _, title, _ in SUMMARY_COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in SUMMARY_COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        cells = [fmt.format(row[key]) if row[key] is not None else "" for key, _, fmt in SUMMARY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def importance_table(per_source: Mapping[str, Mapping[str, Any]], combined: Mapping[str, Any]) -> pa.Table:
    """Long form: one row per (source, layer, unit type, unit); the combined rows have no raw value."""
    columns: dict[str, list] = {k: [] for k in ("source", "layer", "unit_type", "unit_index", "raw", "normalised")}

    def add(source: str, unit_type: str, normalised, raw) -> None:
        layers, units = normalised.shape
        columns["source"] += [source] * (layers * units)
        columns["layer"] += [layer for layer in range(layers) for _ in range(units)]
        columns["unit_type"] += [unit_type] * (layers * units)
        columns["unit_index"] += list(range(units)) * layers
        columns["raw"] += raw.flatten().tolist() if raw is not None else [None] * (layers * units)
        columns["normalised"] += normalised.flatten().tolist()

    for source, tensors in per_source.items():
        for key, normalised in tensors.items():
            if key.startswith("norm."):
                unit_type = key.removeprefix("norm.")
                add(source, unit_type, normalised, tensors[f"raw.{unit_type}"])
    for unit_type, normalised in combined.items():
        add("combined", unit_type, normalised, None)
    schema = pa.schema([("source", pa.string()), ("layer", pa.int32()), ("unit_type", pa.string()),
                        ("unit_index", pa.int32()), ("raw", pa.float64()), ("normalised", pa.float64())])
    return pa.Table.from_pydict(columns, schema=schema)
