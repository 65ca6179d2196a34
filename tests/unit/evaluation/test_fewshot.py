"""lm-eval's prompt settings are explicit: resolved per task, passed to `simple_evaluate`, recorded."""

from __future__ import annotations

from pathlib import Path

import lm_eval
import pytest

from cofitune.configuration.checks import task_name_errors
from cofitune.evaluation.harness import EvalPlan, evaluate_model
from cofitune.evaluation.settings import EvaluationSection, FewshotSettings, fewshot_by_task
from cofitune.infra import io

SMOKE = Path(__file__).resolve().parents[3] / "workflow" / "presets" / "smoke.yaml"


def test_a_tasks_own_entry_wins_over_its_groups_and_the_groups_over_the_defaults():
    fewshot = {"num_fewshot": 1, "fewshot_as_multiturn": True, "system_instruction": None,
               "tasks": {"reasoning": {"num_fewshot": 3, "system_instruction": "Think."}, "gsm8k": {"num_fewshot": 5}}}
    resolved = fewshot_by_task(fewshot, {"reasoning": ["arc", "gsm8k"], "knowledge": ["mmlu"]}, ["spe_a", "arc", "gsm8k", "mmlu"])
    assert resolved == {
        "spe_a": FewshotSettings(1, True, None), "mmlu": FewshotSettings(1, True, None),
        "arc": FewshotSettings(3, True, "Think."), "gsm8k": FewshotSettings(5, True, "Think."),
    }
    assert fewshot_by_task({}, {}, ["t"]) == {"t": FewshotSettings(0, False, None)}  # explicit zero-shot, no turns


def test_the_section_parses_them_and_a_plain_pass_has_no_turns():
    section = EvaluationSection.from_settings({
        "speciality": ["spe_a"], "groups": {"g": ["t", "u"]}, "formats": ["plain", "chat"], "rank_format": "chat",
        "fewshot": {"fewshot_as_multiturn": True, "tasks": {"u": {"num_fewshot": 2}}}})
    plan = EvalPlan(speciality=section.speciality, groups=section.groups, formats=section.formats, fewshot=section.fewshot)
    assert plan.calls("chat") == [(FewshotSettings(0, True, None), ["t"]), (FewshotSettings(2, True, None), ["u"])]
    assert plan.calls("plain") == [(FewshotSettings(0, False, None), ["spe_a", "t"]), (FewshotSettings(2, False, None), ["u"])]


def test_the_settings_reach_simple_evaluate_and_every_metrics_row(task_dir, tiny_llama, monkeypatch):
    model, tokenizer = tiny_llama
    calls, real = [], lm_eval.simple_evaluate

    def spy(**kwargs):
        calls.append({k: kwargs[k] for k in ("tasks", "num_fewshot", "fewshot_as_multiturn", "system_instruction")})
        result = real(**kwargs)
        calls[-1]["contexts"] = [s["arguments"][0][0] for task in kwargs["tasks"] for s in result["samples"][task]]
        return result

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    settings = {"parity": FewshotSettings(2, True, "Answer briefly.")}
    plan = EvalPlan(speciality=("spe_add",), groups={"g": ("parity",)}, formats=("plain", "chat"),
                    include_path=(str(task_dir),), batch_size=4, fewshot=settings)
    output = evaluate_model(model, tokenizer, plan)
    assert [{k: c[k] for k in ("tasks", "num_fewshot", "fewshot_as_multiturn", "system_instruction")} for c in calls] == [
        {"tasks": ["spe_add"], "num_fewshot": 0, "fewshot_as_multiturn": False, "system_instruction": None},
        {"tasks": ["parity"], "num_fewshot": 2, "fewshot_as_multiturn": False, "system_instruction": "Answer briefly."},
        {"tasks": ["parity"], "num_fewshot": 2, "fewshot_as_multiturn": True, "system_instruction": "Answer briefly."},
    ]
    plain_parity = calls[1]["contexts"][0]
    assert plain_parity.startswith("Answer briefly.") and plain_parity.count("is?") == 3  # two shots, then the question
    assert "Answer briefly." in calls[2]["contexts"][0]
    rows = {(m["format"], m["task"]): (m["num_fewshot"], m["fewshot_as_multiturn"], m["system_instruction"]) for m in output.metrics}
    assert rows == {("plain", "spe_add"): (0, False, None), ("plain", "parity"): (2, False, "Answer briefly."),
                    ("chat", "parity"): (2, True, "Answer briefly.")}


@pytest.mark.parametrize(("name", "refused"), [("spe_arith", False), ("knowledge", False), ("arith", True), ("mmlu", True)])
def test_the_preflight_refuses_a_name_that_is_no_task_or_group(name, refused):
    config = io.read_yaml(SMOKE)
    config.setdefault("evaluation", {})["fewshot"] = {"tasks": {name: {"num_fewshot": 1}}}
    errors = [e for e in task_name_errors(config) if e.startswith("evaluation.fewshot")]
    assert bool(errors) == refused, errors
    if refused:
        assert errors[0].startswith(f"evaluation.fewshot.tasks.{name}: {name!r} is neither a configured task nor a versatility group")
