"""Config sections parsed once into what their readers take: the training section as a frozen
TrainingSection (the loop's settings, the sharding, the precision, the resume policy). The others
live beside their readers, so that a stage imports nothing it does not use (editing the soft-mask
reruns no search decision): the evaluation's in `cofitune.evaluation.settings`, the search's
decision settings in `cofitune.coarse.settings` (SearchSection), the soft-mask's in
`cofitune.fine.masking` (SoftmaskSection). Checks live in `checks`; this module imports
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

