"""Deterministic, seeded generators for the project's own data (CC0-1.0, written for this project).

Pure generators return lists of row dicts; only `write_default_data` touches the disk, and it
writes through `cofitune.infra.io`. File names (relative to the data folder):

    speciality/{arith,statute}/{train,test}.jsonl   SFT rows (instruction, input, output)
    versatility/{task}.jsonl                        multiple-choice rows (id, question, choices, answer)
    importance/general.jsonl                        SFT rows
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from cofitune.datagen.common import Row, normalise, sft_text
from cofitune.datagen.importance import importance_rows
from cofitune.datagen.speciality import STATUTE_TEXT, speciality_split, statute_fee, statute_penalty
from cofitune.datagen.versatility import GROUPS, TASKS, versatility_suite, versatility_task
from cofitune.infra import io

DEFAULT_SEED = 1234
SPECIALITY_SIZES = {"train": 1200, "test": 250}

__all__ = [
    "DEFAULT_SEED", "GROUPS", "STATUTE_TEXT", "TASKS", "Row", "checksum_table", "default_datasets", "file_checksums",
    "importance_rows", "normalise", "sft_text", "speciality_split", "statute_fee", "statute_penalty",
    "versatility_suite", "versatility_task", "write_default_data",
]


def default_datasets(seed: int = DEFAULT_SEED) -> dict[str, tuple[str, list[Row]]]:
    """name -> (path relative to the data folder, rows), for every file the project ships."""
    out: dict[str, tuple[str, list[Row]]] = {}
    for task in ("arith", "statute"):
        train, test = speciality_split(task, seed, SPECIALITY_SIZES["train"], SPECIALITY_SIZES["test"])
        out[f"{task}_train"] = (f"speciality/{task}/train.jsonl", train)
        out[f"{task}_test"] = (f"speciality/{task}/test.jsonl", test)
    for task, rows in versatility_suite(seed).items():
        out[task] = (f"versatility/{task}.jsonl", rows)
    out["importance"] = ("importance/general.jsonl", importance_rows(seed))
    return out


def write_default_data(out_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Write every data file under `out_dir`; returns name -> path (names as in default_datasets)."""
    paths = {}
    for name, (rel, rows) in default_datasets(seed).items():
        path = Path(out_dir) / rel
        io.write_jsonl(path, rows)
        paths[name] = path
    return paths


def checksum_table(root: Path) -> str:
    """The "Files and SHA-256 checksums" rows of DATASHEET.md for every JSONL file under `root`."""
    lines = []
    for rel, sha in file_checksums(root, Path(root).rglob("*.jsonl")).items():
        path = Path(root) / rel
        rows = len(io.read_jsonl(path))
        lines.append(f"| `{rel}` | {rows} | {path.stat().st_size} | `{sha}` |")
    return "\n".join(lines) + "\n"


def file_checksums(root: Path, paths: Iterable[Path]) -> dict[str, str]:
    """POSIX path relative to `root` -> SHA-256 hex digest, as listed in DATASHEET.md."""
    return {
        Path(p).relative_to(root).as_posix(): hashlib.sha256(Path(p).read_bytes()).hexdigest()
        for p in sorted(paths)
    }
