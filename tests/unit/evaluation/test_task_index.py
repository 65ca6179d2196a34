"""lm-eval's task names: where each is defined, the built-ins' cache, and the pre-flight's use of them."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval
import lm_eval.tasks

from cofitune.configuration.checks import input_errors, shadowed_builtin_warnings
from cofitune.evaluation.task_index import builtin_task_names, defined_tasks
from cofitune.infra import io

REPO = Path(__file__).resolve().parents[3]
TASK_YAML = "task: {name}\ndataset_path: json\noutput_type: multiple_choice\ntag: [my_tag]\n"


def test_defined_tasks_names_the_file_of_each_task_and_of_each_tags_tasks(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.yaml").write_text(TASK_YAML.format(name="task_one"))
    (tmp_path / "two.yaml").write_text(TASK_YAML.format(name="task_two"))
    defined = defined_tasks([tmp_path])
    assert defined["task_one"] == str(tmp_path / "a" / "one.yaml")
    assert defined["task_two"] == str(tmp_path / "two.yaml")
    assert defined["my_tag"] == ", ".join(sorted([str(tmp_path / "a" / "one.yaml"), str(tmp_path / "two.yaml")]))
    assert defined_tasks([]) == {}


def test_builtin_names_are_cached_per_lm_eval_version_and_a_bad_cache_is_rebuilt(tmp_path, monkeypatch):
    names = builtin_task_names(tmp_path)
    assert {"arc_easy", "hellaswag", "mmlu"} <= names  # a task, another task, a group
    cache = tmp_path / f"lm_eval-{lm_eval.__version__}-builtin-tasks.json"
    assert set(json.loads(cache.read_text())) == names

    cache.write_text('["only_this"]')
    assert builtin_task_names(tmp_path) == {"only_this"}  # read back, not indexed again

    class Indexed:
        def __init__(self, include_defaults):
            self.all_tasks = ["rebuilt"]

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", Indexed)
    cache.write_text("[not json")
    assert builtin_task_names(tmp_path) == {"rebuilt"}
    assert json.loads(cache.read_text()) == ["rebuilt"]


def test_an_unwritable_cache_is_skipped_not_an_error(tmp_path, monkeypatch):
    class Indexed:
        def __init__(self, include_defaults):
            self.all_tasks = ["t"]

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", Indexed)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert builtin_task_names(blocker / "cache") == {"t"}  # the cache folder cannot be made under a file


def _smoke(tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")
    return io.read_yaml(REPO / "workflow" / "presets" / "smoke.yaml")


def test_a_speciality_task_defined_again_under_include_path_is_refused_naming_the_file(tmp_path, monkeypatch):
    config = _smoke(tmp_path, monkeypatch)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "mine.yaml").write_text(TASK_YAML.format(name="spe_arith"))
    config["versatility"]["include_path"] = ["extra"]
    errors, _ = input_errors(config)
    assert [e for e in errors if e.startswith("speciality.tasks.arith: task 'spe_arith' is also defined by "
                                              f"{tmp_path / 'extra' / 'mine.yaml'} under versatility.include_path")]


def test_a_used_include_path_task_named_like_a_builtin_is_a_warning(tmp_path, monkeypatch):
    config = _smoke(tmp_path, monkeypatch)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "arc.yaml").write_text(TASK_YAML.format(name="arc_easy"))
    config["versatility"]["include_path"] = ["extra"]
    assert shadowed_builtin_warnings(config) == []  # defined, but not used
    config["versatility"]["groups"]["knowledge"].append("arc_easy")
    errors, warnings = input_errors(config)
    assert not errors
    assert [w for w in warnings if f"{tmp_path / 'extra' / 'arc.yaml'} defines 'arc_easy', also the name of an lm-eval built-in" in w]


def test_a_cache_that_is_not_a_list_of_names_or_not_text_is_rebuilt(tmp_path, monkeypatch):
    class Indexed:
        def __init__(self, include_defaults):
            self.all_tasks = ["rebuilt"]

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", Indexed)
    cache = tmp_path / f"lm_eval-{lm_eval.__version__}-builtin-tasks.json"
    for content in (b'"arc_easy"', b'{"arc_easy": 1}', b"[1, 2]", b"\xff\xfe not text"):
        cache.write_bytes(content)
        assert builtin_task_names(tmp_path) == {"rebuilt"}, content


def test_no_home_folder_means_no_cache_not_an_error(monkeypatch):
    class Indexed:
        def __init__(self, include_defaults):
            self.all_tasks = ["t"]

    def no_home():
        raise RuntimeError("Could not determine home directory")

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", Indexed)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", no_home)
    assert builtin_task_names() == {"t"}
