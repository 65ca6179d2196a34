"""The evaluation settings as every evaluating and scoring stage reads them: the rules pass a JSON-able
dict (`cofitune.configuration.evaluation.evaluation_settings`; Snakemake's params trigger compares
builtins only), and `EvaluationSection.from_settings` parses it once, at the stage's entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cofitune.evaluation.splits import SplitSizes

FEWSHOT_KEYS = ("num_fewshot", "fewshot_as_multiturn", "system_instruction")


@dataclass(frozen=True)
class FewshotSettings:
    """lm-eval's prompt settings of one task, passed to `simple_evaluate` explicitly so that a new
    lm-eval version cannot change them silently (0.4.10 turned `fewshot_as_multiturn` on)."""

    num_fewshot: int = 0
    fewshot_as_multiturn: bool = False  # only a chat-template pass can put examples in turns
    system_instruction: str | None = None

    def for_format(self, fmt: str) -> FewshotSettings:
        """What lm-eval applies in a pass: without a chat template there are no turns to split into."""
        return self if fmt == "chat" else FewshotSettings(self.num_fewshot, False, self.system_instruction)


def fewshot_by_task(fewshot: Mapping[str, Any], groups: Mapping[str, Sequence[str]], tasks: Sequence[str]) -> dict[str, FewshotSettings]:
    """Each task's settings: the section's defaults, under its group's entry, under its own entry."""
    defaults = {key: fewshot[key] for key in FEWSHOT_KEYS if key in fewshot}
    overrides = fewshot.get("tasks", {})
    group_of = {task: group for group, members in groups.items() for task in members}
    resolved = {}
    for task in tasks:
        merged = {**defaults, **overrides.get(group_of.get(task, ""), {}), **overrides.get(task, {})}
        resolved[task] = FewshotSettings(**merged)
    return resolved


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
    fewshot: Mapping[str, FewshotSettings] = field(default_factory=dict)  # task -> its settings (absent: the defaults)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> EvaluationSection:
        return cls(
            speciality=tuple(settings["speciality"]), groups={g: tuple(t) for g, t in settings["groups"].items()},
            formats=tuple(settings["formats"]), rank_format=settings["rank_format"], batch_size=int(settings.get("batch_size", 8)),
            sizes=SplitSizes.from_config(settings), include_path=tuple(settings.get("include_path", ())),
            metrics=dict(settings.get("metrics", {})), seed=int(settings.get("seed", 1234)), device=settings.get("device", "auto"),
            kl_examples=int(settings.get("kl_examples", 0)), kl_max_length=int(settings.get("kl_max_length", 128)),
            fewshot=fewshot_by_task(settings.get("fewshot", {}), settings["groups"],
                                    [*settings["speciality"], *(t for ts in settings["groups"].values() for t in ts)]),
        )
