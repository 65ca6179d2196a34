"""What every result row records so that it can be traced and reproduced: config hash, versions, code.

Rerun triggers for code: Snakemake tracks a rule's own code, not the Python modules its job
imports. Each rule therefore takes `code_hash("<stage module>:<function>")` as a parameter: a hash
of the stage module and of every `cofitune` module that function imports, directly or through
others, read from the source with `ast`. The entry function counts with its own imports, those
of the module's top level and those of the module's functions it calls; every module reached
from there counts whole (its top-level and function-level imports alike). So editing a module
reruns exactly the rules whose job can run it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("cofitune", "torch", "transformers", "accelerate", "lm_eval", "datasets", "peft", "pyarrow")
PACKAGE = "cofitune"
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the cofitune package


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


def module_file(module: str, root: Path = SOURCE_ROOT) -> Path | None:
    """'cofitune.stages.train' -> its .py file (or the package's __init__.py); None if it is no module."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parse(module: str, root: Path) -> ast.Module:
    path = module_file(module, root)
    if path is None:
        raise ModuleNotFoundError(f"no module {module} under {root}")
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _walk_outside_functions(node: ast.AST):
    """The nodes of a module that are not inside a function body."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _walk_outside_functions(child)


def _function_nodes(tree: ast.Module, function: str):
    """The top-level function `function` and every top-level function of its module it names, transitively."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if function not in functions:
        raise ValueError(f"no top-level function {function!r} in the module")
    todo, seen = [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            yield node
            if isinstance(node, ast.Name) and node.id in functions:
                todo.append(node.id)


def direct_imports(module: str, root: Path = SOURCE_ROOT, function: str | None = None) -> set[str]:
    """The package's modules that `module` imports, with their parent packages: anywhere in its
    source, or (with `function`) at its top level and in that function and the ones it calls."""
    tree = _parse(module, root)
    nodes = ast.walk(tree) if function is None else [*_walk_outside_functions(tree), *_function_nodes(tree, function)]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a import b` imports a.b when b is a module, else the name b from a
            names = [f"{node.module}.{a.name}" if module_file(f"{node.module}.{a.name}", root) else node.module for a in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    found.discard(module)
    return found


def imported_modules(entry: str, root: Path = SOURCE_ROOT) -> list[str]:
    """The modules an entry ('pkg.module' or 'pkg.module:function') can run, transitively; sorted."""
    module, _, function = entry.partition(":")
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
    seen = {module}
    todo = [*parents, *(direct_imports(module, root, function or None) - seen)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(direct_imports(module, root) - seen)
    return sorted(seen)


def code_hash(entry: str, root: Path = SOURCE_ROOT) -> str:
    """A hash of the source of every module `entry` runs: a rule parameter, so edits rerun it."""
    return _code_hash(entry, root)


@cache
def _code_hash(entry: str, root: Path) -> str:
    digest = hashlib.sha256()
    for module in imported_modules(entry, root):
        digest.update(module.encode() + b"\0" + module_file(module, root).read_bytes() + b"\0")
    return digest.hexdigest()[:12]
