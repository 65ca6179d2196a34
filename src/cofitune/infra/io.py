"""The one module that knows file formats: JSON, JSONL, YAML, Parquet, Arrow datasets, safetensors.

Every writer is atomic: it writes a sibling temporary file and renames it into place, so a
killed job never leaves a half-written output that a rerun would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from safetensors.torch import load_file, save_file

T = TypeVar("T")


MAX_DEFECTS_SHOWN = 20


class DataError(ValueError):
    """Malformed input data; the message names the file and, where it applies, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, *, text: str | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(text or f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.reason = message

    @classmethod
    def listing(cls, path: str | Path, defects: Sequence[tuple[int | None, str]], n_rows: int) -> DataError:
        """One error for every defect of a file: a summary line, then each defect with file and line."""
        if len(defects) == 1:
            ((line, reason),) = defects
            return cls(path, reason, line)
        shown = [f"  {path}:{line}: {reason}" if line is not None else f"  {path}: {reason}" for line, reason in defects[:MAX_DEFECTS_SHOWN]]
        more = len(defects) - len(shown)
        summary = f"{len(defects)} defects in {path} ({len({line for line, _ in defects})} of {n_rows} rows)"
        text = "\n".join([f"{summary}:", *shown, *([f"  ... and {more} more"] if more else [])])
        return cls(path, summary, defects[0][0], text=text)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    with _write_refused(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _write_refused(path):
            yield tmp_path
            tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; a shared results folder needs the user's umask
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def _write_refused(path: Path) -> Iterator[None]:
    """A refused write (a full disk, no permission) names the output it was for; nothing is left half-written."""
    try:
        yield
    except OSError as err:
        if str(err.strerror or "").startswith("could not write "):  # named already, by a write inside this one
            raise
        raise OSError(err.errno, f"could not write {path}: {err.strerror or err}; nothing was left in its place") from err


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    with _write_refused(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp  # (an error of the block's own is its own: it need not be a write)
        with _write_refused(path):
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg}", err.lineno) from err


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    lines = [json.dumps(row, ensure_ascii=False, default=_json_default) for row in rows]
    write_text(path, "".join(line + "\n" for line in lines))


def read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    """(line number, parsed object) for every non-blank line; one DataError lists every bad line."""
    return validated_jsonl(path, lambda row, line: (line, row))


def validated_jsonl(path: str | Path, validate: Callable[[Any, int], T]) -> list[T]:
    """Parse every line of a JSONL file and `validate(row, line)` every row; one DataError lists every
    defect of the file (bad UTF-8, bad JSON, and each DataError `validate` raised), with file and line."""
    rows, defects = _scan_jsonl(Path(path))
    n_rows = len(rows) + len(defects)  # parsed rows and lines that did not parse
    valid = []
    for line, row in rows:
        try:
            valid.append(validate(row, line))
        except DataError as err:
            defects.append((err.line or line, err.reason))
    if defects:
        raise DataError.listing(path, sorted(defects, key=lambda d: d[0] or 0), n_rows)
    return valid


def _scan_jsonl(path: Path) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    if path.is_dir():
        raise DataError(path, "is a directory; expected a JSONL file (one JSON object per line)")
    if not path.is_file():
        raise DataError(path, "file not found")
    if kind := _not_jsonl(path):
        raise DataError(path, f"is {kind}, not JSONL; expected one JSON object per line")
    rows, defects = [], []
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is accepted
            except UnicodeDecodeError as err:
                defects.append((lineno, f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); save the file as UTF-8"))
                continue
            if not text.strip():
                continue
            try:
                rows.append((lineno, json.loads(text.rstrip("\r\n"))))
            except json.JSONDecodeError as err:
                defects.append((lineno, f"invalid JSON: {err.msg} (column {err.colno})"))
    if not rows and not defects:
        raise DataError(path, "no records")
    return rows, defects


# Leading bytes of the files users most often pass where JSONL is expected.
BINARY_FORMATS = {b"PAR1": "a Parquet file", b"ARROW1": "an Arrow file", b"PK\x03\x04": "a ZIP archive (e.g. xlsx)",
                  b"\x1f\x8b": "gzip-compressed", b"SQLite format 3": "an SQLite database"}


def _not_jsonl(path: Path) -> str | None:
    """What a file is when it is plainly not JSONL: a binary format, a JSON array, a CSV table; else None."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    for magic, kind in BINARY_FORMATS.items():
        if head.startswith(magic):
            return kind
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"[":
        try:
            text = path.read_text(encoding="utf-8-sig").strip()
            rows = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return None  # then it is JSONL whose first row is an array: named line by line
        if isinstance(rows, list) and (len(rows) != 1 or "\n" in text):
            return f"a JSON array of {len(rows)} row{'s' * (len(rows) != 1)}"
    if path.suffix.lower() in (".csv", ".tsv") and first not in (b"{", b""):
        return "a CSV table" if path.suffix.lower() == ".csv" else "a TSV table"
    return None


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def safetensors_problem(path: str | Path) -> str | None:
    """Why a safetensors file cannot be whole (its header unreadable, or shorter than the header says),
    found from the header alone; None when it looks whole."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            if size < 8 + header_size:
                return f"truncated: {size:,} bytes, shorter than its own header"
            header = json.loads(handle.read(header_size))
    except (OSError, ValueError) as err:
        return f"not a readable safetensors file ({err})"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_size + max(ends, default=0)
    return f"truncated: {size:,} bytes of the {expected:,} its header lists (an interrupted copy or download?)" if size < expected else None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key repeated in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, it is no key of its own
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, list | dict) and key in first:
                raise DataError(self.name, f"key {key!r} appears twice in one mapping (first on line {first[key]}); "
                                "YAML would silently keep only the last", line)
            first.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)


class _AnyTagLoader(yaml.SafeLoader):
    """Parses YAML whatever its tags (lm-eval's `!function`): for checking syntax only."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def yaml_syntax_problem(path: str | Path) -> str | None:
    """Where and why a YAML file does not parse (lm-eval task files, tags allowed); None when it does."""
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.load(handle, Loader=_AnyTagLoader)  # a SafeLoader subclass: no object construction
    except yaml.MarkedYAMLError as err:
        return str(_yaml_error(path, err))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return f"{path}: not readable as YAML ({err})"
    return None


def read_yaml(path: str | Path) -> Any:
    """A YAML file; a repeated key is a DataError naming the file and both lines."""
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
        except yaml.MarkedYAMLError as err:
            raise _yaml_error(path, err) from None


def _yaml_error(path: str | Path, err: yaml.MarkedYAMLError) -> DataError:
    """A YAML parse error as file:line and the parser's reason (the one wording for both readers)."""
    mark = err.problem_mark
    return DataError(path, f"not valid YAML: {err.problem}", mark.line + 1 if mark else None)


def write_parquet(path: str | Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: str | Path) -> pa.Table:
    return pq.read_table(path)


def write_dataset(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Tokenized rows as an Arrow dataset folder (datasets' format, memory-mapped on read)."""
    from datasets import Dataset

    with atomic_dir(path) as tmp:
        Dataset.from_list(rows).save_to_disk(str(tmp))


def read_dataset(path: str | Path):
    from datasets import load_from_disk

    return load_from_disk(str(path))


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors, never pickle; tensors are made contiguous and detached copies."""
    clean = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as err:  # safetensors raises its own error type for a truncated or corrupted header
        raise DataError(path, f"not a readable safetensors file ({err}); delete it and rerun the job that writes it") from err


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy and torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
