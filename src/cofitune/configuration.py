"""Config checks that name the offending key, run before Snakemake plans any job.

The JSON schema (workflow/schemas/config.schema.yaml) catches unknown keys and wrong types;
`semantic_errors` catches what a schema cannot say (cross-references between sections);
`input_errors` checks what the config points at without loading a model: every data file (all of
its defects, each with file and line), the model's location, and every task name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofitune.candidates import candidates_from_config
from cofitune.io import DataError
from cofitune.methods import SPECTRUM_MATCHES_FINAL, Method, baseline_specs
from cofitune.regions import resolve_roles
from cofitune.tasks import SPECIALITY_PREFIX


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
    return errors + gpu_errors(config) + learning_rate_errors(config) + budget_errors(config) + mofo_errors(config)


def mofo_errors(config: Mapping[str, Any]) -> list[str]:
    """MoFO gathers each tensor's momentum where the optimizer state lives: not from host memory."""
    if config.get("training", {}).get("cpu_offload") and any(s.get("method") == Method.MOFO.value for s in static_specs(config)):
        return ["baselines.mofo / method: mofo: not with training.cpu_offload (MoFO gathers each tensor's momentum on the "
                "device every step); turn one of them off"]
    return []


def budget_errors(config: Mapping[str, Any]) -> list[str]:
    """A baseline matched to the CoFiTune model's budget needs a search that makes one."""
    matched = [s.get("id") or s["method"] for s in static_specs(config) if s.get("budget") == SPECTRUM_MATCHES_FINAL]
    if matched and config.get("search", {}).get("mode", "greedy") == "off":
        return [f"baselines.spectrum.match_final / budget: final ({', '.join(matched)}): search.mode is off, so there is no "
                "CoFiTune model whose budget to match"]
    return []


def learning_rate_errors(config: Mapping[str, Any]) -> list[str]:
    """Full SFT's extra learning rates must differ from the one full_sft itself trains at."""
    extra = config.get("baselines", {}).get("full_sft")
    default = config.get("training", {}).get("learning_rate", 3e-4)
    if isinstance(extra, list) and default in extra:
        return [f"baselines.full_sft: {default:g} is training.learning_rate, at which full_sft already trains; list only other rates"]
    return []


def gpu_errors(config: Mapping[str, Any]) -> list[str]:
    """A training job's GPUs must fit its processes: one GPU each, none for the CPU accelerate config."""
    training, gpus = config.get("training", {}), config.get("gpus", {})
    wanted, processes = gpus.get("train", 0), training.get("processes")
    if wanted and processes and wanted != processes:
        return [f"gpus.train: {wanted} GPUs for training.processes: {processes} (one process per GPU: make them equal)"]
    if wanted and training.get("accelerate_config", "cpu") == "cpu" and training.get("launcher", "accelerate") == "accelerate":
        return [f"gpus.train: {wanted} GPUs, but training.accelerate_config is 'cpu' (use gpu or multi_gpu)"]
    return []


def static_specs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Candidates known before any job runs: the enabled baselines, then the configured extras."""
    return [*baseline_specs(config.get("baselines", {})), *config.get("candidates", [])]


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    errors = schema_errors(config, schema) or semantic_errors(config)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def check_inputs(config: Mapping[str, Any]) -> list[str]:
    """Raise one ConfigError listing every input problem; return the warnings."""
    errors, warnings = input_errors(config)
    if errors:
        raise ConfigError("the config's inputs have problems (nothing was run):\n  " + "\n  ".join(e.replace("\n", "\n  ") for e in errors))
    return warnings


def input_errors(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the files, model and tasks the config names; needs no model."""
    from cofitune.data import validate_file
    from cofitune.modeling import ModelSource
    from cofitune.tasks import validate_mc_file, validate_speciality_file

    errors: list[str] = []
    checked: dict[tuple[Any, str], str | None] = {}

    def check(key: str, validate, path: str) -> None:
        if (validate, path) not in checked:  # the same file under several keys is read once
            try:
                validate(path)
                checked[(validate, path)] = None
            except (DataError, OSError) as err:
                checked[(validate, path)] = str(err)
        if checked[(validate, path)]:
            errors.append(f"{key}: {checked[(validate, path)]}")

    for i, path in enumerate(config["speciality"]["train"]):
        check(f"speciality.train[{i}]", validate_file, path)
    for name, files in config.get("importance", {}).get("sources", {}).items():
        for i, path in enumerate(files):
            check(f"importance.sources.{name}[{i}]", validate_file, path)
    for name, spec in config["speciality"]["tasks"].items():
        check(f"speciality.tasks.{name}.test", validate_speciality_file, spec["test"])
    for name, path in config["versatility"].get("local_tasks", {}).items():
        check(f"versatility.local_tasks.{name}", validate_mc_file, path)
    source = ModelSource.from_config(dict(config["model"]))
    errors += [e for e in [source.problem()] if e]
    errors += path_errors(config)
    errors += task_name_errors(config)
    return errors, [w for w in [source.offline_warning()] if w]


SHIPPED_ACCELERATE_CONFIGS = ("cpu", "gpu", "multi_gpu")


def path_errors(config: Mapping[str, Any]) -> list[str]:
    """Folders and files the config names besides data: the accelerate config, task folders."""
    errors = []
    accelerate = config.get("training", {}).get("accelerate_config", "cpu")
    if accelerate not in SHIPPED_ACCELERATE_CONFIGS and not Path(accelerate).is_file():
        errors.append(f"training.accelerate_config: {accelerate!r} is neither one of {list(SHIPPED_ACCELERATE_CONFIGS)} nor a file")
    for i, folder in enumerate(config["versatility"].get("include_path", [])):
        if not Path(folder).is_dir():
            errors.append(f"versatility.include_path[{i}]: folder {folder!r} not found")
    return errors


def task_name_errors(config: Mapping[str, Any]) -> list[str]:
    """Every versatility task must be local, under include_path, or an lm-eval built-in (whose index
    is read only when a task is not local); every `metrics` key must be a configured task."""
    versatility = config["versatility"]
    local = set(versatility.get("local_tasks", {}))
    in_groups = [(group, task) for group, tasks in versatility["groups"].items() for task in tasks]
    others = sorted({task for _, task in in_groups if task not in local})
    errors = []
    if others:
        from cofitune.evaluate import unknown_tasks

        include = [str(Path(p).resolve()) for p in versatility.get("include_path", [])]
        unknown = set(unknown_tasks(include, others))
        errors += [f"versatility.groups.{group}: unknown lm-eval task {task!r} (not in versatility.local_tasks, not under "
                   f"versatility.include_path {include}, not built into lm-eval)" for group, task in in_groups if task in unknown]
    speciality = {SPECIALITY_PREFIX + name for name in config["speciality"]["tasks"]}
    configured = {task for _, task in in_groups} | speciality
    errors += [f"versatility.metrics.{task}: {task!r} is not a configured task" for task in versatility.get("metrics", {})
               if task not in configured]
    return errors
