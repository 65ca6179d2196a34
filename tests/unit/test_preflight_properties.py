"""The pre-flight under configs drawn inside and just outside the schema (boundaries, NaN and
infinities, empty and repeated lists, odd names): each is either refused with a ConfigError whose
every listed problem names a key or a file, or accepted; it never escapes as another exception
(a traceback instead of a message)."""

from __future__ import annotations

import copy
import math
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cofitune.configuration.checks import ConfigError
from cofitune.infra import io
from tests.unit.test_bad_inputs import REPO, _preflight

SMOKE = io.read_yaml(REPO / "workflow" / "presets" / "smoke.yaml")
# Keys whose values reach the code as numbers, strings or lists (dotted paths into the config).
KEYS = [
    "seed", "results_dir", "training.learning_rate", "training.epochs", "training.max_steps", "training.micro_batch_size",
    "training.warmup_ratio", "training.max_length", "training.max_dropped_share", "training.adam_betas",
    "training.max_grad_norm", "training.length_split_tokens", "evaluation.select", "evaluation.confirm", "evaluation.batch_size",
    "evaluation.device", "evaluation.kl_examples", "evaluation.formats", "replicates.seeds", "replicates.models",
    "importance.max_examples", "importance.dropout", "importance.temperature", "search.tie_band", "search.fine_controls",
    "baselines.full_sft", "baselines.wise_ft.alphas", "softmask.apply", "speciality.train",
]
NAMES = ["", ".", "..", "../escaped", "a/b", "spe_arith", "ok_name", "with space", "ü", "x" * 200, "final", "finale"]
BOUNDARIES = [0, 1, -1, 2, 2**32 - 1, 2**32, 10**12, 0.0, 1.0, 1.5, -0.5, 1e-300, 0.999, math.nan, math.inf, -math.inf]
SCALARS = st.one_of(st.sampled_from(BOUNDARIES), st.sampled_from(NAMES), st.booleans(), st.none(),
                    st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.lists(SCALARS, min_size=1, max_size=1).map(lambda v: v * 2))
# Where a name becomes part of a path: a task, a local task (kept in its group), an importance source.
RENAMES = ["speciality.tasks", "versatility.local_tasks", "importance.sources"]
# A problem's lead: "(top level)", a dotted key (indices and names allowed), or a file with its line.
PROBLEM = re.compile(r"^(\(top level\)|[A-Za-z_]\w*(\.[^:\s]+|\[\d+\])*|.*\.(jsonl|json|yaml|csv|safetensors)(:\d+)?): ")


def _set(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
        if not isinstance(config, dict):
            return
    config[last] = value


def _rename(config: dict, section: str, name: str) -> None:
    first, second = section.split(".")
    entries = config.setdefault(first, {}).setdefault(second, {})
    if section == "importance.sources" and not entries:
        entries["general"] = ["data/importance/general.jsonl"]
    old = next(iter(entries))
    entries[name] = entries.pop(old)
    if section == "versatility.local_tasks":  # a group names it too
        config["versatility"]["groups"] = {g: [name if t == old else t for t in tasks] for g, tasks in config["versatility"]["groups"].items()}


MUTATIONS = st.lists(st.one_of(st.tuples(st.just("set"), st.sampled_from(KEYS), VALUES),
                               st.tuples(st.just("rename"), st.sampled_from(RENAMES), st.sampled_from(NAMES))),
                     min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=MUTATIONS)
def test_the_preflight_refuses_with_a_key_or_a_file_or_accepts(mutations, tmp_path_factory, monkeypatch):
    workdir = tmp_path_factory.mktemp("preflight")
    (workdir / "data").symlink_to(REPO / "data")
    monkeypatch.chdir(workdir)
    config = copy.deepcopy(SMOKE)
    for kind, where, value in mutations:
        (_set if kind == "set" else _rename)(config, where, value)
    try:
        _preflight(config)
        event("accepted")
    except ConfigError as err:
        event("refused")
        problems = [line.strip() for line in str(err).splitlines()[1:] if line.startswith("  ") and not line.startswith("    ")]
        assert problems, str(err)
        for problem in problems:
            assert PROBLEM.match(problem), f"names no key or file: {problem!r}"


def test_a_drawn_nan_is_refused_naming_its_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(REPO / "data")
    config = copy.deepcopy(SMOKE)
    _set(config, "training.learning_rate", math.nan)
    with pytest.raises(ConfigError, match=r"training\.learning_rate: nan is not a finite number"):
        _preflight(config)
