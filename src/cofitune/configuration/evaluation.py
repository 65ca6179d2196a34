"""The evaluation settings the rule files pass to every evaluating and scoring rule, made from the
config once (`cofitune.evaluation.settings.EvaluationSection` parses them at the stage's entry).
No stage imports this module: the rules' params carry its output, so they rerun on what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofitune.evaluation.tasks import SPECIALITY_PREFIX


def evaluation_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What every evaluating and scoring rule needs of a (validated) config, in one JSON-able dict."""
    return {
        **config["evaluation"],
        "speciality": [SPECIALITY_PREFIX + name for name in config["speciality"]["tasks"]],
        "groups": config["versatility"]["groups"],
        "metrics": config["versatility"]["metrics"],
        "include_path": [str(Path(p).resolve()) for p in config["versatility"]["include_path"]],
        "seed": config["seed"],
    }
