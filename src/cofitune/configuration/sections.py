"""Config sections parsed once into what their readers take: the training section as a frozen
TrainingSection (the loop's settings, the sharding, the precision, the resume policy), the search's
decision settings as SearchSection, the soft-mask's as SoftmaskSection; the evaluation's are
`cofitune.evaluation.settings`. Checks live in `checks`; this module imports
no check and nothing of the evaluation, so editing a pre-flight message or a task file's format
retrains nothing.

A section crosses the rule boundary as plain JSON-able values and is parsed at the stage's entry:
Snakemake's params trigger serialises only builtins (a dataclass param is "unrepresentable" and
silently left out of the comparison), so an object passed as a param would not rerun its job
when the config changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cofitune.fine.masking import APPLY_MODES
from cofitune.models.sharding import ShardingSettings
from cofitune.training.loop import TrainSettings


@dataclass(frozen=True)
class TrainingSection:
    """The config's `training` section as a training job reads it, parsed once: the loop's settings
    (with the candidate's seed), the sharding, the precision and whether the resume state is kept."""

    loop: TrainSettings
    sharding: ShardingSettings
    precision: str = "auto"
    keep_checkpoint: bool = False
    report_to: tuple[str, ...] = ()  # accelerate trackers of the live curves; not in the loop's settings, so not in the resume fingerprint

    @classmethod
    def from_config(cls, training: Mapping[str, Any], seed: int) -> TrainingSection:
        return cls(loop=TrainSettings.from_config(dict(training), seed=seed), sharding=ShardingSettings.from_config(dict(training)),
                   precision=training.get("precision", "auto"), keep_checkpoint=bool(training.get("keep_checkpoint", False)),
                   report_to=tuple(training.get("report_to") or ()))


@dataclass(frozen=True)
class SearchSection:
    """What a search level's decision reads: the `search` section's mode and tie band, and the run's
    seed (the decision's bootstrap). Only these cross to `decide_level`, so that editing another
    search key (the fine level's controls, say) re-decides nothing."""

    mode: str = "greedy"
    tie_band: float | None = None
    seed: int = 1234

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SearchSection:
        search = config.get("search", {})
        return cls(mode=search.get("mode", "greedy"), tie_band=search.get("tie_band"), seed=int(config.get("seed", 1234)))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SearchSection:
        return cls(**settings)

    def settings(self) -> dict[str, Any]:
        """The JSON-able form a rule passes (Snakemake's params trigger compares builtins only)."""
        return {"mode": self.mode, "tie_band": self.tie_band, "seed": self.seed}


@dataclass(frozen=True)
class SoftmaskSection:
    """The config's `softmask` section: which rows the factors 1 - I scale (`parts`: 'auto' or a
    tuple of parts) and where they act (`apply`: the optimizer's update or the gradient)."""

    parts: str | tuple[str, ...] = "auto"
    apply: str = "update"

    def __post_init__(self) -> None:
        if self.apply not in APPLY_MODES:
            raise ValueError(f"softmask.apply: {self.apply!r} is not one of {APPLY_MODES}")

    @classmethod
    def from_config(cls, softmask: Mapping[str, Any]) -> SoftmaskSection:
        parts = softmask.get("parts", "auto")
        return cls(parts=parts if isinstance(parts, str) else tuple(parts), apply=softmask.get("apply", "update"))

    def settings(self) -> dict[str, Any]:
        return {"parts": self.parts if isinstance(self.parts, str) else list(self.parts), "apply": self.apply}
