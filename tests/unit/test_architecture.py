"""The package's import rules, read from the source (function-level imports included, as
`cofitune.infra.provenance` reads them for the rerun triggers): no circles; the core knows nothing of the
stage layer, the launchers or Snakemake; the rule files and the stage modules map one to one."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from cofitune.infra import provenance

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = provenance.SOURCE_ROOT / "cofitune"
MODULES = sorted(".".join(p.relative_to(provenance.SOURCE_ROOT).with_suffix("").parts).removesuffix(".__init__")
                 for p in PACKAGE_DIR.rglob("*.py"))
ENTRY_POINTS = ("cofitune.cli", "cofitune.stages")  # the launchers' layer: it may import everything below it
# The layers, bottom first (cofitune/__init__.py says what each owns): a module imports from its own
# layer and those before it only.
LAYERS = ("infra", "models", "data", "datagen", "fine", "training", "methods", "coarse", "evaluation", "evidence", "handoff",
          "configuration", "stages", "cli")


def _imports(module: str) -> set[str]:
    """The cofitune modules `module` imports anywhere in its source (not the packages above them)."""
    return {m for m in provenance.direct_imports(module) if m in MODULES and provenance.module_file(m).name != "__init__.py"}


def _external_imports(module: str) -> set[str]:
    tree = ast.parse(provenance.module_file(module).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _a_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (as the modules along it), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_circle_finder_finds_a_circle():
    assert _a_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _a_circle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_through_others():
    circle = _a_circle({m: _imports(m) for m in MODULES})
    assert circle is None, "import circle: " + " -> ".join(circle)


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_every_module_lies_in_a_layer_and_the_package_docstring_lists_them_in_order():
    assert {_layer(m) for m in MODULES if m != "cofitune"} == set(LAYERS)
    docstring = ast.get_docstring(ast.parse((PACKAGE_DIR / "__init__.py").read_text()))
    listed = [line.split()[0] for line in docstring.splitlines() if line.startswith("    ")]
    assert listed == list(LAYERS)
    for layer in LAYERS:
        init = PACKAGE_DIR / layer / "__init__.py"
        assert not init.parent.is_dir() or ast.get_docstring(ast.parse(init.read_text())), f"{layer} says nothing of what it owns"


def test_no_module_imports_a_layer_above_its_own():
    for module in MODULES:
        if module == "cofitune":
            continue
        rank = LAYERS.index(_layer(module))
        upward = sorted(m for m in _imports(module) if LAYERS.index(_layer(m)) > rank)
        assert not upward, f"{module} imports {upward}, above its layer {_layer(module)!r} ({' < '.join(LAYERS)})"


def test_the_core_imports_no_stage_no_launcher_and_no_workflow_engine():
    core = [m for m in MODULES if not m.startswith(ENTRY_POINTS)]
    assert len(core) > 30
    for module in core:
        upward = {m for m in _imports(module) if m.startswith(ENTRY_POINTS)}
        assert not upward, f"{module} imports {sorted(upward)}: the core may not import the stage layer or the CLI"
        engines = _external_imports(module) & {"snakemake", "argparse"}
        assert not engines, f"{module} imports {sorted(engines)}: only the stages and the CLI parse arguments or meet Snakemake"


def test_no_rule_file_imports_a_stage_module():
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        imports = re.findall(r"^\s*(?:from|import)\s+(cofitune[\w.]*)", path.read_text(), flags=re.M)
        assert not [m for m in imports if m.startswith("cofitune.stages")], f"{path.name} imports a stage module: {imports}"


def test_rule_files_and_stage_modules_map_one_to_one():
    rules = {p.stem for p in (REPO / "workflow" / "rules").glob("*.smk")} - {"common"}
    stages = {p.stem for p in (PACKAGE_DIR / "stages").glob("*.py")} - {"__init__", "common"}
    assert rules == stages
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        used = set(re.findall(r'code_hash\("cofitune\.stages\.(\w+):', path.read_text()))
        assert used <= {path.stem}, f"{path.name} runs stage functions of {sorted(used - {path.stem})}"


def _stage_functions():
    for path in sorted((PACKAGE_DIR / "stages").glob("*.py")):
        module = importlib.import_module(f"cofitune.stages.{path.stem}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_") and name != "main":
                yield f"{module.__name__}:{name}", function


def test_stage_functions_of_four_or_more_parameters_take_keywords_only():
    """A swapped pair of paths must fail at the call, not run silently."""
    checked = 0
    for name, function in _stage_functions():
        parameters = inspect.signature(function).parameters.values()
        if len(parameters) >= 4:
            checked += 1
            positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
            assert not positional, f"{name}: {positional} may be passed by position"
    assert checked >= 12


def test_rule_scripts_call_their_stage_function_with_keywords_only():
    stage_names = {name.partition(":")[2] for name, _ in _stage_functions()}
    for path in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id in stage_names]
        assert len(calls) == 1, f"{path.name} calls {len(calls)} stage functions"
        assert not calls[0].args, f"{path.name}: {calls[0].func.id} is called with positional arguments"


def _architecture_map() -> dict[str, str]:
    """The README's map of src/cofitune/: each entry's first word -> the text of its lines."""
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("\nsrc/cofitune/"):]
    block = block[:block.index("\ndata/ ")]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines()[2:]:
        if line.startswith("  ") and not line.startswith("   "):
            current = line.split()[0]
            entries[current] = ""
        entries[current] += line + "\n"
    return entries


def test_the_readme_architecture_map_names_every_subpackage_module_and_stage():
    entries = _architecture_map()
    expected = [f"{layer}/" if (PACKAGE_DIR / layer).is_dir() else f"{layer}.py" for layer in LAYERS]
    assert list(entries) == expected, "the README's map is out of date with the layers"
    for layer in LAYERS:
        folder = PACKAGE_DIR / layer
        if folder.is_dir() and layer != "datagen":
            modules = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "common"))
            text = entries[f"{layer}/"]
            named = [m for m in modules if (f"{m}.py" if layer != "stages" else m) in text]
            assert named == modules, f"the README's map of {layer}/ misses {sorted(set(modules) - set(named))}"


def test_the_dag_and_the_config_checks_name_no_method():
    """The recipes answer what a method waits for, derives from, how its id is spelt and what it
    refuses: the rule files and the configuration layer ask them, and branch on no method."""
    from cofitune.methods.recipes import Method

    names = {m.value for m in Method} - {"base", "region"}
    for path in [REPO / "workflow" / "rules" / "common.smk", REPO / "workflow" / "rules" / "train.smk", PACKAGE_DIR / "configuration" / "checks.py", PACKAGE_DIR / "configuration" / "sections.py"]:
        text = path.read_text()
        found = sorted(n for n in names if re.search(rf"\b{re.escape(n)}\b", text)) + re.findall(r"\bMethod\.\w+|SPECTRUM_\w+", text)
        assert not found, f"{path.name} names methods: {found}"
