"""conda cannot run here, so check what can be: the env file parses and pins what pyproject pins."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]


def _pins(requirements):
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", r).groups() for r in requirements)


def test_conda_env_pins_equal_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "cofitune.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == _pins(project["dependencies"])
    assert "python=3.11" in env["dependencies"]


def test_every_rule_uses_the_env_file():
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        text = rules.read_text()
        assert text.count("rule ") == text.count('"../../envs/cofitune.yaml"'), rules.name



def test_every_module_of_the_stage_layer_stays_small():
    """The stage layer is glue (paths in, paths out); anything longer belongs in the core."""
    for module in (REPO / "src" / "cofitune" / "stages").glob("*.py"):
        assert len(module.read_text().splitlines()) <= 150, module.name
