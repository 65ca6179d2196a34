"""The importance file (safetensors), read and written here and nowhere else. Its keys:

  norm.<unit type>        normalised importance in [0, 1], layers x units: what the soft-mask uses
  raw.<unit type>         a source's pooled importance before normalising (a source's file only)
  split_half.<unit type>  per layer, the Spearman correlation of two disjoint halves' estimates
                          (a source's file only, when it had enough examples to split)

Unit types: `head`, `intermediate` and `output` (`cofitune.fine.importance`). A combined file
holds `norm.` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cofitune.infra import io

PARTS = ("norm", "raw", "split_half")


@dataclass(frozen=True)
class Importance:
    norm: Mapping[str, torch.Tensor]  # unit type -> layers x units
    raw: Mapping[str, torch.Tensor] = field(default_factory=dict)
    split_half: Mapping[str, torch.Tensor] = field(default_factory=dict)  # unit type -> one value per layer


def write_importance(path: str | Path, importance: Importance, metadata: Mapping[str, str] | None = None) -> None:
    tensors = {f"{part}.{unit_type}": values for part in PARTS for unit_type, values in getattr(importance, part).items()}
    io.save_tensors(path, tensors, metadata=dict(metadata) if metadata else None)


def read_importance(path: str | Path) -> Importance:
    """The file's parts; a NaN or inf normalised value is refused, naming the file and the layers."""
    parts: dict[str, dict[str, torch.Tensor]] = {part: {} for part in PARTS}
    for key, values in io.load_tensors(path).items():
        part, _, unit_type = key.partition(".")
        if part not in parts:
            raise io.DataError(path, f"unknown key {key!r}: not an importance file (keys are {', '.join(p + '.<unit>' for p in PARTS)})")
        parts[part][unit_type] = values
    for unit_type, values in parts["norm"].items():
        bad = ~torch.isfinite(values)
        if bad.any():
            layers = sorted({int(i) for i in bad.nonzero()[:, 0]})
            raise io.DataError(path, f"{int(bad.sum())} NaN/inf values of {unit_type} importance (layers {layers}); "
                                     "delete this file (and its sources) to estimate it again")
    return Importance(**parts)
