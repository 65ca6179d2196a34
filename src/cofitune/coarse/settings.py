"""The search's decision settings as `decide_level` reads them: the rules pass their JSON
(`SearchSection.settings`; Snakemake's params trigger compares builtins only) and the stage parses
it at entry, like `cofitune.evaluation.settings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
