"""Config checks that name the offending key, run before Snakemake plans any job.

The JSON schema (workflow/schemas/config.schema.yaml) catches unknown keys and wrong types;
`semantic_errors` catches what a schema cannot say (cross-references between sections).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cofitune.candidates import candidates_from_config
from cofitune.methods import baseline_specs
from cofitune.regions import resolve_roles


class ConfigError(ValueError):
    pass


def schema_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every schema violation as 'key.path: message', unknown keys named explicitly."""
    from jsonschema import Draft202012Validator

    messages = []
    for error in sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            messages.append(f"{where}: unknown key(s) {', '.join(repr(k) for k in extra)}")
        else:
            messages.append(f"{where}: {error.message}")
    return messages


def semantic_errors(config: Mapping[str, Any]) -> list[str]:
    errors = []
    evaluation = config.get("evaluation", {})
    if evaluation.get("rank_format", "plain") not in evaluation.get("formats", ["plain"]):
        errors.append("evaluation.rank_format: must be one of evaluation.formats")
    for name in config.get("module_sets", {}):
        try:
            resolve_roles(name, config["module_sets"])
        except ValueError as err:
            errors.append(f"module_sets.{name}: {err}")
    try:
        for candidate in candidates_from_config(static_specs(config)):
            candidate.recipe.check(candidate, config.get("module_sets"))
    except ValueError as err:
        errors.append(f"candidates: {err}")
    return errors


def static_specs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Candidates known before any job runs: the enabled baselines, then the configured extras."""
    return [*baseline_specs(config.get("baselines", {})), *config.get("candidates", [])]


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    errors = schema_errors(config, schema) or semantic_errors(config)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
