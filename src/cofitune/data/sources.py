"""Where SFT rows come from: a config entry (a path, `hf:org/name`, or an object with options) read
into (row locator, record) pairs, so validation can name every defect where the user can find it.

JSONL keeps its own reader (`io.validated_jsonl`: file:line, bad UTF-8 and bad JSON per line); a JSON
array is parsed here (exact Python types per row); Parquet, CSV and Arrow go through `datasets`, and a
Hub dataset through the Hugging Face cache (`hub.py`). Rows of a table are counted from 0, as in
`datasets` and pandas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cofitune.data.hub import hub_records
from cofitune.data.tables import SUFFIXES, load_rows
from cofitune.infra import io
from cofitune.infra.io import DataError

T = TypeVar("T")

HUB_PREFIX = "hf:"
FORMATS = ("auto", "alpaca", "messages", "sharegpt")
# The names a `columns:` mapping may rename onto: the row formats' own keys.
CANONICAL_COLUMNS = ("instruction", "input", "output", "messages", "conversations", "system")
SPEC_KEYS = ("path", "split", "revision", "subset", "columns", "format")
HUB_ONLY = ("split", "revision", "subset")


@dataclass(frozen=True)
class Source:
    """One entry of `speciality.train` or `importance.sources.<name>`, checked."""

    path: str
    split: str | None = None
    revision: str | None = None
    subset: str | None = None
    columns: tuple[tuple[str, str], ...] = ()  # (canonical name, the source's column)
    format: str = "auto"

    @classmethod
    def parse(cls, entry: str | Path | Mapping[str, Any]) -> Source:
        """A string (path or hf:org/name) or an object; a bad option is a DataError naming the entry."""
        if isinstance(entry, str | Path):
            return cls(str(entry))
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise DataError(str(entry), "an entry is a path, 'hf:org/name', or an object with a string 'path'")
        path = entry["path"]
        if unknown := [key for key in entry if key not in SPEC_KEYS]:
            raise DataError(path, f"unknown option(s) {unknown}; known: {list(SPEC_KEYS)}")
        if not path.startswith(HUB_PREFIX) and (given := [key for key in HUB_ONLY if entry.get(key) is not None]):
            raise DataError(path, f"{given} apply to Hub datasets ({HUB_PREFIX}org/name) only; a local file has one split")
        fmt = entry.get("format") or "auto"
        if fmt not in FORMATS:
            raise DataError(path, f"format {fmt!r} is not one of {list(FORMATS)}")
        columns = entry.get("columns") or {}
        if bad := [name for name in columns if name not in CANONICAL_COLUMNS]:
            raise DataError(path, f"columns: {bad} are not row keys; map onto {list(CANONICAL_COLUMNS)}")
        if len(set(columns.values())) != len(columns):
            raise DataError(path, f"columns: one column is mapped onto two names ({dict(columns)})")
        return cls(path, entry.get("split"), entry.get("revision"), entry.get("subset"), tuple(columns.items()), fmt)

    @property
    def is_hub(self) -> bool:
        return self.path.startswith(HUB_PREFIX)

    @property
    def label(self) -> str:
        """How messages and reports name the source: its path, and for the Hub the non-default options."""
        options = [f"{key} {value}" for key, value in (("subset", self.subset), ("split", self.split),
                                                        ("revision", self.revision)) if value is not None]
        return f"{self.path} ({', '.join(options)})" if self.is_hub and options else self.path

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two entries the same data: the resolved file, or the Hub id with its options."""
        if self.is_hub:
            return (self.path, str(self.subset), self.split or "train", self.revision or "main")
        return (str(Path(self.path).resolve()),)

    @property
    def kind(self) -> str:
        """hub, or the file type from the suffix; another suffix is read as JSONL (as before)."""
        return "hub" if self.is_hub else SUFFIXES.get(Path(self.path).suffix.lower(), "jsonl")


def local_path(entry: str | Path | Mapping[str, Any]) -> str | None:
    """The local file an entry reads (for a workflow rule's inputs); None for a Hub dataset."""
    source = Source.parse(entry)
    return None if source.is_hub else source.path


def validated_rows(source: Source, validate: Callable[[Any, str], T]) -> list[T]:
    """`validate(record, locator)` for every row; one DataError lists every defect of the source, each at
    its line (JSONL: "file:line") or row ("file row N", counted from 0)."""
    if source.kind == "jsonl" or (source.kind == "json" and not _is_json_array(Path(source.path))):
        return io.validated_jsonl(source.path, lambda record, line: validate(record, f"{source.path}:{line}"))
    rows = list(_records(source))
    valid, defects = [], []
    for index, record in rows:
        try:
            valid.append(validate(record, f"{source.label} row {index}"))
        except DataError as err:
            defects.append((index, err.reason))
    if defects:
        raise row_listing(source.label, defects, len(rows))
    return valid


def row_listing(label: str, defects: list[tuple[int, str]], n_rows: int) -> DataError:
    """Like `DataError.listing`, with rows counted from 0 in place of lines."""
    if len(defects) == 1:
        ((index, reason),) = defects
        return DataError(label, reason, text=f"{label} row {index}: {reason} (rows counted from 0)")
    shown = [f"  {label} row {index}: {reason}" for index, reason in defects[: io.MAX_DEFECTS_SHOWN]]
    more = len(defects) - len(shown)
    summary = f"{len(defects)} defects in {label} ({len(defects)} of {n_rows} rows, counted from 0)"
    return DataError(label, summary, text="\n".join([f"{summary}:", *shown, *([f"  ... and {more} more"] if more else [])]))


def _is_json_array(path: Path) -> bool:
    """A .json file holding JSON Lines (a common mix-up) is read as JSONL, line by line."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"["


def _records(source: Source) -> Iterator[tuple[int, Any]]:
    if source.kind == "hub":
        records = hub_records(source.path, source.label, source.revision, source.subset, source.split)
    else:
        path = Path(source.path)
        if path.is_dir():
            raise DataError(path, f"is a directory; expected a {source.kind} file")
        if not path.is_file():
            raise DataError(path, "file not found")
        if source.kind == "json":
            records = _json_array(path)
        else:  # a CSV cell is read as written: no numbers from digits, no null from "NA" or an empty cell
            text = {"features": _csv_text_features(path), "na_filter": False} if source.kind == "csv" else {}
            records = load_rows(source.kind, str(path), data_files=str(path.resolve()), **text)
    if not records:
        raise DataError(source.label, "no records")
    yield from enumerate(records)


def _json_array(path: Path) -> list[Any]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 (byte 0x{err.object[err.start]:02x} at offset {err.start}); save the file as UTF-8") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno) from None
    if not isinstance(rows, list):
        raise DataError(path, f"is one JSON {type(rows).__name__}, not an array of rows (or JSON Lines)")
    return rows


def _csv_text_features(path: Path):
    """Every column of a CSV file as text, from its header line."""
    import csv

    import datasets

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 (byte 0x{err.object[err.start]:02x}); save the CSV file as UTF-8") from None
    if not header:
        raise DataError(path, "no header line (the first line names the columns)")
    return datasets.Features({name: datasets.Value("string") for name in header})
