"""lm-eval tasks from local data, a real lm-eval run on a tiny model, and the score arithmetic."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cofitune import cli, io, stages
from cofitune.evaluate import EvalPlan, evaluate_model, resolve_metric
from cofitune.scores import candidate_scores, item_scores_by_task, task_intervals
from cofitune.tasks import speciality_rows, validate_mc_row


def test_speciality_prompts_are_rendered_like_the_training_data(tiny_llama):
    _, tokenizer = tiny_llama
    rows, kind = speciality_rows([(1, {"instruction": "Add", "input": "1 2", "output": " 3 "})], "t.jsonl", tokenizer)
    assert kind == "generate_until"
    assert rows == [{"prompt": "<|im_start|>user\nAdd\n\n1 2<|im_end|>\n<|im_start|>assistant\n", "target": "3"}]
    rows, kind = speciality_rows([(1, {"instruction": "Pick", "choices": ["a", "b"], "answer": 1})], "t.jsonl", tokenizer)
    assert kind == "multiple_choice" and rows[0]["choices"] == ["a", "b"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "q", "choices": ["a", "b"]}, "missing field 'answer'"),
        ({"question": "q", "choices": ["a", "a"], "answer": 0}, "duplicates"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "not an index"),
        ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be list"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "'answer' must be int"),
    ],
)
def test_multiple_choice_rows_are_validated_with_file_and_line(row, message):
    with pytest.raises(io.DataError, match=message) as err:
        validate_mc_row(row, "v.jsonl", 7)
    assert str(err.value).startswith("v.jsonl:7: ")


def test_mixed_task_kinds_are_rejected(tiny_llama):
    records = [(1, {"instruction": "a", "output": "b"}), (2, {"instruction": "c", "choices": ["x", "y"], "answer": 0})]
    with pytest.raises(io.DataError, match="mixes multiple-choice and free-answer rows"):
        speciality_rows(records, "t.jsonl", tiny_llama[1])


@pytest.fixture
def task_dir(tmp_path, tiny_llama):
    model, tokenizer = tiny_llama
    (tmp_path / "model").mkdir()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    io.write_jsonl(tmp_path / "spe.jsonl", [{"instruction": f"What is {i}+1?", "output": str(i + 1)} for i in range(6)])
    io.write_jsonl(tmp_path / "mc.jsonl", [{"question": f"{i} is?", "choices": ["even", "odd"], "answer": i % 2} for i in range(6)])
    stages.make_tasks(tmp_path / "model", {"add": {"test": str(tmp_path / "spe.jsonl"), "max_gen_toks": 4}},
                      {"parity": str(tmp_path / "mc.jsonl")}, tmp_path / "tasks")
    return tmp_path / "tasks"


def test_a_real_lm_eval_run_keeps_every_item_in_both_formats(task_dir, tiny_llama):
    model, tokenizer = tiny_llama
    plan = EvalPlan(speciality=("spe_add",), groups={"reasoning": ("parity",)}, formats=("plain", "chat"),
                    include_path=(str(task_dir),), batch_size=4)
    output = evaluate_model(model, tokenizer, plan)
    assert [(m["format"], m["task"], m["metric"], m["n"]) for m in output.metrics] == [
        ("plain", "spe_add", "exact_match,strip", 6), ("plain", "parity", "acc,none", 6), ("chat", "parity", "acc,none", 6)
    ]
    assert len(output.samples) == 18
    for fmt, task in (("plain", "parity"), ("chat", "parity"), ("plain", "spe_add")):
        items = [s for s in output.samples if (s["format"], s["task"]) == (fmt, task)]
        metric = next(m for m in output.metrics if (m["format"], m["task"]) == (fmt, task))
        assert sum(s["score"] for s in items) / len(items) == pytest.approx(metric["value"])
    again = evaluate_model(model, tokenizer, plan)
    assert again.samples == output.samples  # deterministic


def test_metric_resolution():
    assert resolve_metric("t", {"acc,none": 0.5, "acc_norm,none": 0.4}, None) == "acc,none"
    assert resolve_metric("t", {"exact_match,strict-match": 0.5, "exact_match,flexible-extract": 0.6}, None) == "exact_match,strict-match"
    assert resolve_metric("t", {"acc,none": 0.5, "acc_norm,none": 0.4}, "acc_norm,none") == "acc_norm,none"
    with pytest.raises(KeyError, match="reports"):
        resolve_metric("t", {"acc,none": 0.5}, "f1,none")


def test_scores_follow_the_method_definitions():
    rows = [
        {"format": "plain", "task": "spe_a", "value": 0.8},
        {"format": "plain", "task": "spe_b", "value": 0.4},
        {"format": "plain", "task": "k1", "value": 0.5},
        {"format": "plain", "task": "k2", "value": 0.7},
        {"format": "plain", "task": "r1", "value": 0.3},
        {"format": "chat", "task": "k1", "value": 0.1},
        {"format": "chat", "task": "k2", "value": 0.1},
        {"format": "chat", "task": "r1", "value": 0.4},
    ]
    groups = {"knowledge": ["k1", "k2"], "reasoning": ["r1"]}
    scores = candidate_scores(rows, ["spe_a", "spe_b"], groups, ["plain", "chat"], rank_format="plain")
    assert scores["spe"] == pytest.approx(60.0)
    assert scores["group_plain_knowledge"] == pytest.approx(60.0)
    assert scores["ver_plain"] == pytest.approx(45.0)  # mean of group means, not of tasks
    assert scores["ver_chat"] == pytest.approx(25.0)
    assert scores["ver"] == scores["ver_plain"] and scores["uni"] == pytest.approx(105.0)


def test_task_intervals_contain_the_score_and_narrow_with_more_items():
    rows = [{"candidate": "base", "format": "plain", "task": "t", "doc_id": i, "score": float(i % 4 == 0)} for i in range(40)]
    rows += [{"candidate": "base", "format": "plain", "task": "big", "doc_id": i, "score": float(i % 4 == 0)} for i in range(400)]
    rows += [{"candidate": "base", "format": "chat", "task": "t", "doc_id": i, "score": 1.0} for i in range(40)]
    intervals = task_intervals(item_scores_by_task(rows))
    score, low, high, items = intervals[("base", "plain", "t")]
    assert (score, items) == (25.0, 40) and low < score < high
    big = intervals[("base", "plain", "big")]
    assert big[0] == 25.0 and big[2] - big[1] < (high - low) / 2  # ~1/sqrt(10) of the width
    assert intervals[("base", "chat", "t")] == (100.0, 100.0, 100.0, 40)
    assert task_intervals(item_scores_by_task(rows)) == intervals  # seeded


def test_task_scores_command_prints_one_row_per_task(tmp_path, capsys):
    rows = [{"candidate": "base", "format": fmt, "task": "vk_world", "doc_id": i, "target": "a", "prediction": "a",
             "score": float(i < 3)} for fmt in ("plain", "chat") for i in range(4)]
    io.write_parquet(tmp_path / "samples.parquet", pa.Table.from_pylist(rows))
    assert cli.main(["task-scores", str(tmp_path / "samples.parquet")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| base | chat | vk_world | 75.0 [") and lines[2].endswith("| 4 |")
    assert len(lines) == 4


def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), io.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "a").write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2"])
def test_shared_prefix_scoring_equals_lm_eval_hflm(family, request):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from cofitune.evaluate import shared_prefix_lm

    model, tokenizer = request.getfixturevalue(family)
    contexts = ["Question: what is the largest planet?\nAnswer:", "<|im_start|>user\nPick one<|im_end|>\n<|im_start|>assistant\n"]
    choices = [" Jupiter", " a very small rock in space", " Mars", " the Sun itself"]
    requests = [Instance("loglikelihood", {}, (c, ch), i) for i, (c, ch) in enumerate((c, ch) for c in contexts for ch in choices)]
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(requests)
    fast = shared_prefix_lm(model, tokenizer, 4, "cpu").loglikelihood(requests)
    for (ref_ll, ref_greedy), (ll, greedy) in zip(reference, fast, strict=True):
        assert ll == pytest.approx(ref_ll, abs=1e-4) and greedy == ref_greedy
