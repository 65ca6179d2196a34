"""Which task names lm-eval knows, and where each is defined: the user's include_path, its built-ins.

lm-eval resolves a name to the last folder that defines it (the workflow's own task folder comes
first, the user's include_path after it), so a name defined twice is scored from the other file
without a word. The pre-flight reads this index to refuse such names before any job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cofitune.infra import io

log = logging.getLogger(__name__)


def defined_tasks(include_path: Sequence[str | Path]) -> dict[str, str]:
    """Every task, group and tag name that the YAML files under `include_path` define -> the file
    that defines it as lm-eval resolves it (a tag: the files of its tasks)."""
    if not include_path:
        return {}
    from lm_eval.tasks import TaskManager

    index = TaskManager(include_path=[str(p) for p in include_path], include_defaults=False).task_index
    files = {name: str(entry.yaml_path) for name, entry in index.items() if entry.yaml_path}
    tags = {name: ", ".join(sorted(files.get(member, member) for member in entry.tags))
            for name, entry in index.items() if not entry.yaml_path}
    return {**tags, **files}


def builtin_task_names(cache_dir: str | Path | None = None) -> frozenset[str]:
    """Every task, group and tag name built into the installed lm-eval. Indexing them takes 4-5 s,
    so the names are kept per lm-eval version in the user's cache folder (a cache that cannot be
    read or written is rebuilt or skipped: it is never an error)."""
    import lm_eval

    cache = _cache_file(cache_dir, lm_eval.__version__)
    cached = _read_names(cache) if cache else None
    if cached is not None:
        return cached
    from lm_eval.tasks import TaskManager

    log.info("indexing lm-eval %s's built-in tasks (cached in %s)", lm_eval.__version__, cache)
    names = frozenset(TaskManager(include_defaults=True).all_tasks)
    try:
        if cache:
            io.write_json(cache, sorted(names))
    except OSError as err:
        log.info("lm-eval's task names not cached: %s", err)
    return names


def _cache_file(cache_dir: str | Path | None, version: str) -> Path | None:
    try:
        return Path(cache_dir or default_cache_dir()) / f"lm_eval-{version}-builtin-tasks.json"
    except RuntimeError:  # no home folder to keep a cache in
        return None


def _read_names(cache: Path) -> frozenset[str] | None:
    """The cached names, or None when the cache is missing, unreadable or not a list of names."""
    try:
        names = io.read_json(cache)
    except (OSError, UnicodeDecodeError, io.DataError):
        return None
    return frozenset(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/cofitune, by default ~/.cache/cofitune."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cofitune"
