"""The evaluation settings as every evaluating and scoring stage reads them: the rules pass a JSON-able
dict (`cofitune.configuration.evaluation.evaluation_settings`; Snakemake's params trigger compares
builtins only), and `EvaluationSection.from_settings` parses it once, at the stage's entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cofitune.evaluation.splits import SplitSizes


@dataclass(frozen=True)
class EvaluationSection:
    speciality: tuple[str, ...]  # lm-eval task names of the speciality tasks (spe_<name>)
    groups: Mapping[str, tuple[str, ...]]  # versatility group -> its lm-eval task names
    formats: tuple[str, ...]  # the versatility formats a reported model is scored in
    rank_format: str  # the format the search and the summary rank by
    batch_size: int
    sizes: SplitSizes
    include_path: tuple[str, ...] = ()
    metrics: Mapping[str, str] = field(default_factory=dict)  # task -> lm-eval metric key
    seed: int = 1234
    device: str = "auto"
    kl_examples: int = 0  # 0: the forgetting signal is not measured
    kl_max_length: int = 128

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> EvaluationSection:
        return cls(
            speciality=tuple(settings["speciality"]), groups={g: tuple(t) for g, t in settings["groups"].items()},
            formats=tuple(settings["formats"]), rank_format=settings["rank_format"], batch_size=int(settings.get("batch_size", 8)),
            sizes=SplitSizes.from_config(settings), include_path=tuple(settings.get("include_path", ())),
            metrics=dict(settings.get("metrics", {})), seed=int(settings.get("seed", 1234)), device=settings.get("device", "auto"),
            kl_examples=int(settings.get("kl_examples", 0)), kl_max_length=int(settings.get("kl_max_length", 128)),
        )
