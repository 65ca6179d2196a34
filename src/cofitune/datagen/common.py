"""Shared helpers: seeded RNGs, text normalisation, uniqueness and multiple-choice assembly."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Row = dict[str, Any]


def rng_for(seed: int, name: str) -> random.Random:
    """An independent stream per generator, so adding one generator never shifts another's output.

    random.Random seeds a str through SHA-512, so this is stable across runs and platforms
    (unlike hash(), which is salted per process).
    """
    return random.Random(f"cofitune.datagen:{name}:{seed}")


def normalise(text: str) -> str:
    """Lowercase words only: the form used to compare texts for duplicates and leakage."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def sft_text(row: Row) -> str:
    """The normalised prompt side of an SFT row (instruction and input together)."""
    return normalise(f"{row['instruction']} {row['input']}")


def sample_unique(
    make: Callable[[random.Random], Row], rng: random.Random, n: int, key: Callable[[Row], str],
    seen: set[str] | None = None, max_tries: int = 200,
) -> list[Row]:
    """Draw rows from `make` until `n` have distinct keys (also distinct from `seen`)."""
    seen = set() if seen is None else seen
    rows: list[Row] = []
    misses = 0
    while len(rows) < n:
        row = make(rng)
        k = key(row)
        if k in seen:
            misses += 1
            if misses > max_tries * n:
                raise RuntimeError(f"generator exhausted after {len(rows)} of {n} unique rows")
            continue
        seen.add(k)
        rows.append(row)
    return rows


def dedupe(items: Iterable[Any], key: Callable[[Any], str]) -> list[Any]:
    """Keep the first item for each key, preserving order."""
    seen: set[str] = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def balanced_positions(n: int, rng: random.Random, k: int = 4) -> list[int]:
    """Correct-answer positions used equally often (up to n % k) and in seeded random order."""
    positions = [i % k for i in range(n)]
    rng.shuffle(positions)
    return positions


def place_answer(answer: str, distractors: Sequence[str], position: int, rng: random.Random) -> list[str]:
    """Shuffle the distractors and insert the answer at `position`."""
    others = list(distractors)
    rng.shuffle(others)
    others.insert(position, answer)
    return others


def join_options(options: Sequence[str]) -> str:
    """'a, b, c or d': how questions that compare the options list them inline."""
    return ", ".join(options[:-1]) + " or " + options[-1]
