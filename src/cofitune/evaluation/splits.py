"""Item splits: the documents of every task divided into a *select* part and a *confirm* part.

The search decides on *select* items only; the models the run reports (the CoFiTune model and its
references, every baseline, the base model, and the chosen search node once more) are scored on
*confirm* items, so the scores a run prints are not those that chose its answer (no winner's curse).

A task's split is a permutation of its document indices seeded by the run's seed and the task's
name alone: adding a task, a model or a format changes no other task's items. *select* is the head
of the permutation and *confirm* its tail, so the two are disjoint, and changing one size adds or
removes items of that split only.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SPLITS = ("select", "confirm")
SELECT, CONFIRM = SPLITS

Size = int | float | None  # items (int >= 1), a fraction of the task's documents in (0, 1], or null: all the rest


@dataclass(frozen=True)
class SplitSizes:
    select: Size
    confirm: Size

    @classmethod
    def from_config(cls, evaluation: Mapping[str, object]) -> SplitSizes:
        return cls(evaluation.get("select"), evaluation.get("confirm"))  # type: ignore[arg-type]


def size_problem(key: str, size: object) -> str | None:
    """Why `size` is not a split size (None when it is one)."""
    if size is None or (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
        return None
    if isinstance(size, float) and 0.0 < size <= 1.0:
        return None
    return (f"{key}: {size!r} is neither a number of items per task (an integer >= 1) nor a fraction of a task's items "
            "in (0, 1]; null takes every item the other split does not")


def sizes_problem(sizes: SplitSizes) -> str | None:
    if sizes.select is None and sizes.confirm is None:
        return "evaluation.select and evaluation.confirm are both null; give at least one of them a size"
    return None


def split_counts(n_docs: int, sizes: SplitSizes) -> tuple[int, int]:
    """(select, confirm) item counts for a task of `n_docs` documents. A split given a size keeps
    it (capped at what the task has: select first); a null split takes every remaining document."""
    def count(size: Size, available: int) -> int:
        if size is None:
            return available
        wanted = size if isinstance(size, int) else max(1, round(size * n_docs))
        return min(wanted, available)

    if sizes.select is None:
        confirm = count(sizes.confirm, n_docs)
        return n_docs - confirm, confirm
    select = count(sizes.select, n_docs)
    return select, count(sizes.confirm, n_docs - select)


def task_permutation(task: str, n_docs: int, seed: int) -> np.ndarray:
    """The task's document indices in a seeded order that depends on the seed and the task's name only."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8"))])
    return rng.permutation(n_docs)


def split_documents(task: str, n_docs: int, sizes: SplitSizes, seed: int) -> dict[str, list[int]]:
    """split -> the task's document indices in it (sorted): select from the permutation's head,
    confirm from its tail."""
    select, confirm = split_counts(n_docs, sizes)
    order = task_permutation(task, n_docs, seed)
    return {SELECT: sorted(order[:select].tolist()), CONFIRM: sorted(order[n_docs - confirm :].tolist())}


def documents_for(split: str, doc_counts: Mapping[str, int], sizes: SplitSizes, seed: int) -> dict[str, list[int]]:
    """task -> its document indices in `split`, for lm-eval's `simple_evaluate(samples=...)`.
    Raises ValueError naming each task that would have no item in the split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = {task: split_documents(task, n, sizes, seed)[split] for task, n in doc_counts.items()}
    empty = sorted(task for task, docs in out.items() if not docs)
    if empty:
        counts = ", ".join(f"{task} ({doc_counts[task]} items)" for task in empty)
        raise ValueError(f"no {split} items left in {counts} with evaluation.select {sizes.select!r} and "
                         f"evaluation.confirm {sizes.confirm!r}: lower the other split's size")
    return out


def capped_tasks(doc_counts: Mapping[str, int], sizes: SplitSizes) -> list[str]:
    """The tasks too small for the configured sizes (a sized split got fewer items than asked)."""
    def asked(size: Size, n: int) -> int:  # a null split asks for nothing in particular
        return 0 if size is None else size if isinstance(size, int) else max(1, round(size * n))

    return [task for task, n in sorted(doc_counts.items())
            if any(a > got for a, got in zip((asked(sizes.select, n), asked(sizes.confirm, n)), split_counts(n, sizes), strict=True))]


def split_item_counts(samples: Sequence[Mapping[str, object]]) -> dict[str, dict[str, int]]:
    """split -> task -> distinct items, from per-item sample rows (each format counts once)."""
    seen: dict[str, dict[str, set]] = {}
    for row in samples:
        seen.setdefault(str(row["split"]), {}).setdefault(str(row["task"]), set()).add(row["doc_id"])
    return {split: {task: len(ids) for task, ids in tasks.items()} for split, tasks in seen.items()}
