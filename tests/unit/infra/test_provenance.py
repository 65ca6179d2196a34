"""Rerun triggers computed from the imports a stage really makes, and the provenance of results."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cofitune.infra import provenance

REPO = Path(__file__).resolve().parents[3]
# Every rule's entry, read from the rule files themselves: the test covers what the workflow uses.
ENTRIES = sorted({m for f in (REPO / "workflow" / "rules").glob("*.smk") for m in re.findall(r'code_hash\("([^"]+)"\)', f.read_text())})


@pytest.fixture
def source_copy(tmp_path):
    shutil.copytree(provenance.SOURCE_ROOT / "cofitune", tmp_path / "cofitune", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _changed_by_editing(root: Path, module: str) -> set[str]:
    before = {e: provenance.code_hash(e, root) for e in ENTRIES}
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + "\n# an edit\n")
    provenance._code_hash.cache_clear()
    return {e for e in ENTRIES if provenance.code_hash(e, root) != before[e]}


def test_every_rule_names_an_existing_stage_function():
    assert len(ENTRIES) == 17
    for entry in ENTRIES:
        assert len(provenance.code_hash(entry)) == 12, entry


@pytest.mark.parametrize(
    ("edited", "rerun"),
    [
        # masking reaches only the training rules (through the stage module's top-level import)
        ("cofitune.fine.masking", {"cofitune.stages.train:main", "cofitune.stages.train:derive_weights"}),
        # importance is imported by the importance stage, and by the training rules only *through*
        # masking (masking imports importance.n_heads): a transitive dependency
        ("cofitune.fine.importance", {"cofitune.stages.importance:main", "cofitune.stages.importance:combine_importance",
                                 "cofitune.stages.train:main", "cofitune.stages.train:derive_weights"}),
        # drawing code redraws pictures and retrains nothing
        ("cofitune.evidence.plots", {"cofitune.stages.importance:tabulate_importance", "cofitune.stages.tables:plot_results",
                            "cofitune.stages.report:draw_search_tree"}),
        ("cofitune.coarse.search", {"cofitune.stages.search:decide_level"}),
        # the summary's Markdown and the claims' wording: the rules that write them (the summary and
        # the model card, which carries the summary), never an evaluation or a training
        ("cofitune.evidence.markdown", {"cofitune.stages.tables:summarise", "cofitune.stages.deliver:write_final_model"}),
        ("cofitune.evidence.claims", {"cofitune.stages.tables:summarise", "cofitune.stages.deliver:write_final_model"}),
        # the pre-flight's checks and messages run before planning, in no job; the training section
        # is parsed where the training stage reads it
        ("cofitune.configuration.checks", set()),
        ("cofitune.configuration.sections", {"cofitune.stages.train:main", "cofitune.stages.train:derive_weights"}),
        # the task files' format: the data stage that writes them (the evaluations follow from the files)
        ("cofitune.evaluation.tasks", {"cofitune.stages.data:make_tasks", "cofitune.stages.data:prepare_data"}),
        # the samples file's format is the evaluation's own output
        ("cofitune.evaluation.harness", {"cofitune.stages.evaluate:evaluate_candidate"}),
    ],
)
def test_editing_a_module_changes_exactly_the_stages_that_import_it(source_copy, edited, rerun):
    assert _changed_by_editing(source_copy, edited) == rerun


def test_an_entry_function_counts_its_own_imports_and_those_of_the_functions_it_calls(tmp_path):
    package = tmp_path / "cofitune"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("top", "used", "helper_dep", "unused"):
        (package / f"{name}.py").write_text(f"X = '{name}'\n")
    (package / "stage.py").write_text(
        "from cofitune import top\n\n"
        "def entry():\n    from cofitune import used\n    return _helper()\n\n"
        "def _helper():\n    from cofitune.helper_dep import X\n    return X\n\n"
        "def other():\n    import cofitune.unused\n"
    )
    modules = provenance.imported_modules("cofitune.stage:entry", tmp_path)
    assert modules == ["cofitune", "cofitune.helper_dep", "cofitune.stage", "cofitune.top", "cofitune.used"]
    assert "cofitune.unused" in provenance.imported_modules("cofitune.stage", tmp_path)  # whole module
    with pytest.raises(ValueError, match="no top-level function 'missing'"):
        provenance.imported_modules("cofitune.stage:missing", tmp_path)


def test_config_hash_ignores_key_order_and_package_versions_name_the_stack():
    assert provenance.config_hash({"a": 1, "b": [1, 2]}) == provenance.config_hash({"b": [1, 2], "a": 1})
    assert provenance.config_hash({"a": 1}) != provenance.config_hash({"a": 2})
    versions = provenance.package_versions()
    assert set(versions) == set(provenance.PACKAGES) and versions["torch"].startswith("2.")
