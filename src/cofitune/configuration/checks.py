"""Config checks that name the offending key, run before Snakemake plans any job.

The JSON schema (workflow/schemas/config.schema.yaml) catches unknown keys and wrong types;
`semantic_errors` catches what a schema cannot say (cross-references between sections);
`input_errors` checks what the config points at without loading a model: every data file (all of
its defects, each with file and line), the model's location, and every task name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from cofitune.evaluation.splits import SplitSizes, size_problem, sizes_problem, split_counts
from cofitune.evaluation.tasks import SPECIALITY_PREFIX
from cofitune.infra.io import DataError, read_yaml, yaml_syntax_problem
from cofitune.methods.candidates import (
    REPLICATE_GROUPS,
    candidate_from_spec,
    candidates_from_config,
    parse_region_control,
)
from cofitune.methods.recipes import baseline_errors, baseline_specs
from cofitune.models.regions import resolve_roles

# The largest seed numpy's and lm-eval's generators accept (2**32 - 1); the schema holds the same bound.
MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    pass


# Keys of earlier versions: what replaced them, instead of "unknown key".
REPLACED_KEYS = {
    "evaluation.limit": "replaced by evaluation.select (items per task the search decides on) and evaluation.confirm "
                        "(items per task the reported models are scored on, disjoint from select)",
}


def schema_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every schema violation as 'key.path: message', unknown keys named explicitly."""
    from jsonschema import Draft202012Validator

    messages = []
    for error in sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            messages += [f"{where}.{k}: {REPLACED_KEYS[f'{where}.{k}']}" for k in extra if f"{where}.{k}" in REPLACED_KEYS]
            if unknown := [k for k in extra if f"{where}.{k}" not in REPLACED_KEYS]:
                messages.append(f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)}")
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
    baseline_ids = baseline_id_errors(config)
    errors += baseline_ids
    try:
        for candidate in candidates_from_config(static_specs(config)):
            candidate.recipe.check(candidate, config.get("module_sets"))
    except ValueError as err:
        errors += [] if baseline_ids else [f"candidates: {err}"]
    return (errors + method_errors(config) + gpu_errors(config) + baseline_errors(config)
            + split_errors(config) + seed_errors(config) + replicate_model_errors(config) + device_errors(config)
            + task_prefix_errors(config))


def method_errors(config: Mapping[str, Any]) -> list[str]:
    """What each configured method refuses to combine with (its recipe says), for every spec that
    makes a candidate at all (the others are named by the checks above)."""
    errors = []
    for spec in static_specs(config):
        try:
            candidate = candidate_from_spec(spec)
        except (ValueError, KeyError, TypeError):
            continue
        errors += candidate.recipe.config_errors(candidate, config)
    return errors


def baseline_id_errors(config: Mapping[str, Any]) -> list[str]:
    """Two baselines with one id (a repeated Wise-FT alpha, full-SFT rates equal once written in an id):
    named by the baseline key, since baselines take no `id` of their own."""
    errors, seen = [], {}
    for spec in baseline_specs(config.get("baselines", {})):
        candidate = candidate_from_spec(spec)
        candidate_id, key = candidate.id, candidate.method.config_key
        if candidate_id in seen:
            errors.append(f"{key}: two entries make the same model {candidate_id!r}; list each value once "
                          "(learning rates must differ in their first 6 significant digits)")
        seen[candidate_id] = key
    return errors


def split_errors(config: Mapping[str, Any]) -> list[str]:
    """The item splits' sizes (`cofitune.evaluation.splits`)."""
    evaluation = config.get("evaluation", {})
    errors = [problem for key in ("select", "confirm") if (problem := size_problem(f"evaluation.{key}", evaluation.get(key)))]
    if not errors and "select" in evaluation:  # an unset select is the schema's default, never null
        errors += filter(None, [sizes_problem(SplitSizes.from_config(evaluation))])
    return errors


def split_size_errors(config: Mapping[str, Any], items: Mapping[str, int]) -> list[str]:
    """A local test file too small to leave an item to each split (what the evaluation job would refuse)."""
    sizes = SplitSizes.from_config(config.get("evaluation", {}))
    if sizes_problem(sizes):
        return []  # said by split_errors
    errors = []
    for key, n in items.items():
        select, confirm = split_counts(n, sizes)
        if not select or not confirm:
            errors.append(f"{key}: {n} item(s) leave none to {'select' if not select else 'confirm'} with evaluation.select "
                          f"{sizes.select!r} and evaluation.confirm {sizes.confirm!r}; lower the other split's size")
    return errors


def seed_errors(config: Mapping[str, Any]) -> list[str]:
    """Every training seed must be one numpy and lm-eval accept; listed replicate seeds are extra ones."""
    seed, seeds = config.get("seed", 1234), config.get("replicates", {}).get("seeds", 1)
    errors = []
    if isinstance(seeds, list) and seed in seeds:
        errors.append(f"replicates.seeds: {seed} is the run's seed (`seed`), with which every model trains already; "
                      "list only the extra seeds")
    if isinstance(seed, int) and isinstance(seeds, int) and seed + seeds - 1 > MAX_SEED:
        errors.append(f"replicates.seeds: seeds {seed} .. {seed + seeds - 1} pass {MAX_SEED}, the largest seed numpy accepts; "
                      "lower `seed`")
    return errors


def replicate_model_errors(config: Mapping[str, Any]) -> list[str]:
    """Every name in replicates.models is a group, a configured candidate or a search node's id."""
    try:
        ids = [c.id for c in candidates_from_config(static_specs(config))]
    except ValueError:
        return []  # reported as a candidates error
    known = [*REPLICATE_GROUPS, *ids]
    errors = []
    for i, name in enumerate(config.get("replicates", {}).get("models", [])):
        if name in known or _is_region_id(name):
            continue
        close = get_close_matches(name, known, n=1)
        errors.append(f"replicates.models[{i}]: {name!r} is none of the groups {list(REPLICATE_GROUPS)}, no candidate or "
                      "baseline id and no search node's id" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return errors


def _is_region_id(name: str) -> bool:
    try:
        parse_region_control(name)
    except (KeyError, ValueError):
        return False
    return True


def device_errors(config: Mapping[str, Any]) -> list[str]:
    import torch

    device = config.get("evaluation", {}).get("device", "auto")
    try:
        if device != "auto":
            torch.device(device)
    except (RuntimeError, ValueError):
        return [f"evaluation.device: {device!r} is not a device torch knows (auto, cpu, cuda, cuda:0, mps, ...)"]
    return []


def task_prefix_errors(config: Mapping[str, Any]) -> list[str]:
    """The speciality tasks are spe_<name>; a versatility task of that form would replace or shadow one."""
    versatility = config.get("versatility", {})
    names = {*versatility.get("local_tasks", {}), *(t for tasks in versatility.get("groups", {}).values() for t in tasks)}
    return [f"versatility: task {name!r} starts with {SPECIALITY_PREFIX!r}, the prefix of the speciality tasks (speciality.tasks "
            f"makes {SPECIALITY_PREFIX}<name>); rename it" for name in sorted(names) if name.startswith(SPECIALITY_PREFIX)]


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


def number_errors(config: Any, where: str = "") -> list[str]:
    """NaN and infinities (YAML's .nan, .inf) pass a schema's type and some of its bounds; no key can use them."""
    if isinstance(config, float) and not math.isfinite(config):
        return [f"{where or '(top level)'}: {config} is not a finite number"]
    if isinstance(config, Mapping):
        return [e for key, value in config.items() for e in number_errors(value, f"{where}.{key}" if where else str(key))]
    if isinstance(config, list):
        return [e for i, value in enumerate(config) for e in number_errors(value, f"{where}[{i}]")]
    return []


def check_config_files(paths: list[str | Path]) -> None:
    """Every config file parses, with no key repeated in a mapping (Snakemake's loader keeps the last
    of two equal keys silently: the first block would be dropped unseen)."""
    errors = []
    for path in paths:
        try:
            read_yaml(path)
        except DataError as err:
            errors.append(str(err))
    if errors:
        raise ConfigError("invalid config file:\n  " + "\n  ".join(errors))


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    errors = number_errors(config) or schema_errors(config, schema) or semantic_errors(config)
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def check_inputs(config: Mapping[str, Any], project: str | Path | None = None) -> list[str]:
    """Raise one ConfigError listing every input problem; return the warnings. `project`: the
    workflow's own folder, which results_dir must keep out of."""
    errors, warnings = input_errors(config)
    reuse_problems, reuse_warnings = reuse_errors(config)
    errors = results_dir_errors(config.get("results_dir", "results"), Path.cwd(), project) + errors + reuse_problems
    warnings += reuse_warnings
    if errors:
        raise ConfigError("the config's inputs have problems (nothing was run):\n  " + "\n  ".join(e.replace("\n", "\n  ") for e in errors))
    return warnings


def input_errors(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the files, model and tasks the config names; needs no model."""
    from cofitune.data.sft import validate_file
    from cofitune.evaluation.tasks import validate_mc_file, validate_speciality_file
    from cofitune.models.modeling import ModelSource

    errors: list[str] = []
    checked: dict[tuple[Any, str], str | None] = {}
    items: dict[str, int] = {}  # local test file key -> its items

    def check(key: str, validate, path: Any) -> None:
        seen = (validate, json.dumps(path, sort_keys=True, default=str))  # an SFT entry may be an object
        if seen not in checked:  # the same file under several keys is read once
            try:
                rows = validate(path)
                checked[seen] = None
                items[key] = len(rows[0] if isinstance(rows, tuple) else rows)
            except (DataError, OSError) as err:
                checked[seen] = str(err)
        if checked[seen]:
            errors.append(f"{key}: {checked[seen]}")

    file_lists = {"speciality.train": config["speciality"]["train"],
                  **{f"importance.sources.{name}": files for name, files in config.get("importance", {}).get("sources", {}).items()}}
    for key, files in file_lists.items():
        errors += repeated_file_errors(key, files)
        for i, path in enumerate(files):
            check(f"{key}[{i}]", validate_file, path)
    for name, spec in config["speciality"]["tasks"].items():
        check(f"speciality.tasks.{name}.test", validate_speciality_file, spec["test"])
    for name, path in config["versatility"].get("local_tasks", {}).items():
        check(f"versatility.local_tasks.{name}", validate_mc_file, path)
    errors += split_size_errors(config, {key: n for key, n in items.items() if not key.startswith(tuple(file_lists))})
    source = ModelSource.from_config(dict(config["model"]))
    errors += [e for e in [source.problem()] if e]
    errors += path_errors(config)
    errors += task_name_errors(config)
    return errors, [w for w in [source.offline_warning()] if w] + shadowed_builtin_warnings(config)


def reuse_errors(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) of `search.reuse`: a region file this version reads, of this model's family
    where that is known before the download (else write_final_model checks it)."""
    from cofitune.handoff.region_file import family_error, read_region
    from cofitune.models.modeling import ModelSource

    reuse = config.get("search", {}).get("reuse")
    if not reuse:
        return [], []
    try:
        reused = read_region(reuse)
    except DataError as err:
        return [f"search.reuse: {err}"], []
    errors = [] if _module_set_known(reused.module_set, config) else [
        f"search.reuse: the region's module set {reused.module_set!r} is not one this config knows (module_sets)"]
    model_type = ModelSource.from_config(dict(config["model"])).model_type()
    errors += [e for e in [family_error(reused, model_type)] if e]
    warnings = [] if model_type else [f"search.reuse: the family of {config['model']['name_or_path']!r} is not known before "
                                      "its download; write_final_model checks it against the region's "
                                      f"{reused.model_type!r}"]
    return errors, warnings


def _module_set_known(module_set: str, config: Mapping[str, Any]) -> bool:
    from cofitune.models.regions import resolve_roles

    try:
        resolve_roles(module_set, config.get("module_sets") or None)
    except (KeyError, ValueError):
        return False
    return True


# The project's folders that hold its sources and data: results_dir may not be, or lie inside, one.
PROJECT_FOLDERS = ("src", "workflow", "tests", "data", "envs", "bench", ".git", ".snakemake")


def results_dir_errors(results_dir: str, workdir: Path, project: str | Path | None) -> list[str]:
    """results_dir is a folder of its own: not the working folder, the project, or one of its source folders."""
    target = Path(results_dir).resolve()
    where = {workdir.resolve(): "the working folder"}
    if project is not None:
        where[Path(project).resolve()] = "the project's own folder"
        where.update({(Path(project) / name).resolve(): f"the project's {name}/ folder" for name in PROJECT_FOLDERS})
    for folder, what in where.items():
        inside = folder.name in PROJECT_FOLDERS and target.is_relative_to(folder)
        if target == folder or inside:
            return [f"results_dir: {results_dir!r} is {'inside ' if target != folder else ''}{what} ({folder}); every output "
                    "would be written among its files: name a folder of its own, e.g. results"]
    return []


def repeated_file_errors(key: str, files: list[Any]) -> list[str]:
    """A file (or Hub split) listed twice would train twice as often, unseen: name both entries."""
    from cofitune.data.sources import Source

    first: dict[tuple[str, ...], int] = {}
    errors = []
    for i, entry in enumerate(files):
        try:
            source = Source.parse(entry)
        except DataError:  # a malformed entry: its own error comes from reading it
            continue
        if source.identity in first:
            errors.append(f"{key}[{i}]: {source.label!r} is already {key}[{first[source.identity]}]; list each file once")
        first.setdefault(source.identity, i)
    return errors


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
            continue
        # lm-eval skips a task file it cannot parse with a log line, and the task is then "unknown"
        task_files = sorted(p for pattern in ("*.yaml", "*.yml") for p in Path(folder).rglob(pattern))
        errors += [f"versatility.include_path[{i}]: {problem}" for p in task_files if (problem := yaml_syntax_problem(p))]
    return errors


def task_name_errors(config: Mapping[str, Any]) -> list[str]:
    """Every versatility task must be local, under include_path, or an lm-eval built-in; a name of
    ours (a local or speciality task) may be neither of the other two, or lm-eval would score the
    other file under it, or report ours as a public benchmark; every `metrics` key must be a
    configured task."""
    from cofitune.evaluation.task_index import builtin_task_names, defined_tasks

    versatility = config["versatility"]
    include = include_folders(config)
    defined, builtin = defined_tasks(include), builtin_task_names()
    ours = {**{name: f"versatility.local_tasks.{name}" for name in versatility.get("local_tasks", {})},
            **{SPECIALITY_PREFIX + name: f"speciality.tasks.{name}" for name in config["speciality"]["tasks"]}}
    errors = [f"{key}: task {name!r} is also defined by {defined[name]} under versatility.include_path, whose task "
              "lm-eval would score under that name instead: rename one of them" for name, key in ours.items() if name in defined]
    errors += [f"{key}: {name!r} is the name of an lm-eval built-in task, group or tag; its scores would be reported under "
               "that benchmark's name: rename it" for name, key in ours.items() if name in builtin and name not in defined]
    in_groups = [(group, task) for group, tasks in versatility["groups"].items() for task in tasks]
    errors += [f"versatility.groups.{group}: unknown lm-eval task {task!r} (not in versatility.local_tasks, not under "
               f"versatility.include_path {include}, not built into lm-eval)"
               for group, task in in_groups if task not in ours and task not in defined and task not in builtin]
    configured = {task for _, task in in_groups} | {name for name in ours if name.startswith(SPECIALITY_PREFIX)}
    errors += [f"versatility.metrics.{task}: {task!r} is not a configured task" for task in versatility.get("metrics", {})
               if task not in configured]
    named = sorted(configured | set(versatility["groups"]))
    errors += [f"evaluation.fewshot.tasks.{name}: {name!r} is neither a configured task nor a versatility group (known: {named})"
               for name in config.get("evaluation", {}).get("fewshot", {}).get("tasks", {}) if name not in named]
    return errors


def include_folders(config: Mapping[str, Any]) -> list[str]:
    """versatility.include_path resolved, without the folders that do not exist (path_errors names them)."""
    return [str(Path(p).resolve()) for p in config["versatility"].get("include_path", []) if Path(p).is_dir()]


def shadowed_builtin_warnings(config: Mapping[str, Any]) -> list[str]:
    """A task of the user's include_path named like an lm-eval built-in replaces the built-in: often
    meant (a local copy of a benchmark), never to go unsaid."""
    from cofitune.evaluation.task_index import builtin_task_names, defined_tasks

    versatility = config["versatility"]
    defined = defined_tasks(include_folders(config))
    used = sorted({task for tasks in versatility["groups"].values() for task in tasks if task in defined})
    return [f"versatility.include_path: {defined[task]} defines {task!r}, also the name of an lm-eval built-in; "
            "its scores are your file's task" for task in used if task in builtin_task_names()]
