"""What every result row records so that it can be traced and reproduced: config hash, versions, code."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("cofitune", "torch", "transformers", "accelerate", "lm_eval", "datasets", "peft", "pyarrow")
PACKAGE_DIR = Path(__file__).resolve().parent

# Which modules each workflow stage runs: their hash is a rule parameter, so editing them reruns
# exactly the stages that use them (Snakemake itself only tracks a rule's own code).
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "prepare_model": ("modeling",),
    "prepare_data": ("data", "io"),
    "make_tasks": ("tasks", "data", "io"),
    "importance": ("importance", "regions", "modeling", "data", "io", "stages", "tables", "plots"),
    "train": ("train", "regions", "candidates", "baselines", "masking", "modeling", "data", "io", "stages"),
    "evaluate": ("evaluate", "tasks", "modeling", "tables", "io", "stages"),
    "aggregate": ("scores", "tables", "plots", "provenance", "io", "stages"),
    "search": ("search", "scores", "io", "stages"),
}


def config_hash(config: Mapping[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            found[name] = "not installed"
    if found.get("cofitune") == "not installed":
        from cofitune import __version__

        found["cofitune"] = __version__
    return found


def code_hash(stage: str) -> str:
    digest = hashlib.sha256()
    for module in STAGE_MODULES[stage]:
        digest.update((PACKAGE_DIR / f"{module}.py").read_bytes())
    return digest.hexdigest()[:12]
