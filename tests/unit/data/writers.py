"""SFT rows written as each supported source: JSONL, JSON array, Parquet, CSV, Arrow, and a Hub
dataset in a test-made Hugging Face cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table with every key any row has (pyarrow's from_pylist keeps only the first row's)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return pa.Table.from_pylist([{key: row.get(key) for key in keys} for row in rows])


def write_rows(kind: str, rows: list[dict[str, Any]], folder: Path, name: str = "train") -> Path:
    """`rows` in a file of `kind` under `folder`; its path."""
    path = folder / f"{name}.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    elif kind == "parquet":
        pq.write_table(_table(rows), path)
    elif kind == "arrow":  # the IPC stream format, as datasets' save_to_disk writes it
        table = _table(rows)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    elif kind == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(kind)
    return path


def hub_dataset(cache: Path, repo_id: str, rows: list[dict[str, Any]], split: str = "train") -> Path:
    """A dataset snapshot in the Hub cache's layout: refs/main names the commit, the snapshot holds
    data/<split>-00000-of-00001.parquet. Returns the snapshot folder."""
    root = cache / f"datasets--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    snapshot = root / "snapshots" / COMMIT
    (snapshot / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(_table(rows), snapshot / "data" / f"{split}-00000-of-00001.parquet")
    return snapshot


def tree(folder: Path) -> list[str]:
    """Every path under a folder: to show that reading wrote nothing there."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
