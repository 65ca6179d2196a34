"""Evaluation through lm-eval: a real run on a tiny model, metric choice, the shared-prefix scorer."""

from __future__ import annotations

import pytest
import torch

from cofitune.evaluation.harness import EvalPlan, evaluate_model, resolve_metric
from cofitune.evaluation.settings import EvaluationSection
from cofitune.evaluation.splits import CONFIRM, SELECT, SplitSizes, documents_for
from cofitune.infra import io
from cofitune.stages.evaluate import eval_plan


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


def _yaml_task(folder, rows):
    """A hand-written lm-eval YAML task under an include_path folder (not built by cofitune)."""
    folder.mkdir()
    io.write_jsonl(folder / "rows.jsonl", rows)
    (folder / "echo.yaml").write_text(
        "task: echo\ndataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {folder / 'rows.jsonl'}}}}}\ntest_split: test\n"
        "output_type: generate_until\ndoc_to_text: '{{question}}'\ndoc_to_target: '{{answer}}'\n"
        "generation_kwargs: {until: ['\\n'], max_gen_toks: 2, do_sample: false}\n"
        "metric_list: [{metric: exact_match}]\nmetadata: {version: 1}\n")


def test_each_split_reaches_lm_eval_as_the_documents_it_names(task_dir, tmp_path, tiny_llama):
    """A local task (cofitune's own YAML) and a hand-written YAML task under include_path: lm-eval
    scores exactly the split's documents, and each logged doc_id is the document it scored (its
    target is that row's answer)."""
    model, tokenizer = tiny_llama
    echo = [{"question": f"Say {i}.", "answer": f"a{i}"} for i in range(9)]
    _yaml_task(tmp_path / "extra", echo)
    sizes = SplitSizes(2, 3)
    seen = {}
    for split in (SELECT, CONFIRM):
        plan = EvalPlan(speciality=("spe_add",), groups={"g": ("echo",)}, formats=("plain",), batch_size=4,
                        include_path=(str(task_dir), str(tmp_path / "extra")), split=split, sizes=sizes, seed=5)
        output = evaluate_model(model, tokenizer, plan)
        expected = documents_for(split, {"spe_add": 6, "echo": 9}, sizes, seed=5)
        for task, targets in (("spe_add", [str(i + 1) for i in range(6)]), ("echo", [r["answer"] for r in echo])):
            rows = [s for s in output.samples if s["task"] == task]
            assert [r["doc_id"] for r in rows] == expected[task] and {r["split"] for r in rows} == {split}
            assert [r["target"] for r in rows] == [targets[i] for i in expected[task]]
        assert {m["task"]: m["n"] for m in output.metrics} == {"spe_add": 2 if split == SELECT else 3, "echo": 2 if split == SELECT else 3}
        seen[split] = {(s["task"], s["doc_id"]) for s in output.samples}
    assert not seen[SELECT] & seen[CONFIRM]


def test_search_nodes_are_scored_in_the_ranking_format_only():
    evaluation = EvaluationSection.from_settings({"speciality": ["spe_a"], "groups": {"g": ["t"]}, "formats": ["plain", "chat"],
                                                  "rank_format": "chat", "batch_size": 8, "select": 40, "confirm": 100, "seed": 3})
    select, confirm = eval_plan(evaluation, "tasks", SELECT), eval_plan(evaluation, "tasks", CONFIRM)
    assert (select.passes(), select.tasks_for("plain"), select.tasks_for("chat")) == (["plain", "chat"], ["spe_a"], ["t"])
    assert (confirm.passes(), confirm.tasks_for("plain")) == (["plain", "chat"], ["spe_a", "t"])
    assert select.sizes == confirm.sizes == SplitSizes(40, 100) and (select.split, confirm.split) == (SELECT, CONFIRM)


def test_metric_resolution():
    assert resolve_metric("t", {"acc,none": 0.5, "acc_norm,none": 0.4}, None) == "acc,none"
    assert resolve_metric("t", {"exact_match,strict-match": 0.5, "exact_match,flexible-extract": 0.6}, None) == "exact_match,strict-match"
    assert resolve_metric("t", {"acc,none": 0.5, "acc_norm,none": 0.4}, "acc_norm,none") == "acc_norm,none"
    with pytest.raises(KeyError, match="reports"):
        resolve_metric("t", {"acc,none": 0.5}, "f1,none")


CONTEXTS = ["Question: what is the largest planet?\nAnswer:", "<|im_start|>user\nPick one<|im_end|>\n<|im_start|>assistant\n",
            "Q: 2 + 2 =", "A much longer context that goes on and on about the solar system, its planets and moons, before asking: which?"]
CHOICES = [[" Jupiter", " a very small rock in space", " Mars", " the Sun itself"], [" yes", " no"], [" 4", " four", " 5"],
           [" Saturn and its rings", " Io"]]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2", "tiny_neox"])
def test_shared_prefix_scoring_equals_lm_eval_hflm(family, batch_size, request):
    """Contexts of different lengths batched together (left padding), different numbers and lengths
    of choices, batch sizes that do not divide the number of questions: HFLM's numbers, item by item."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from cofitune.evaluation.harness import shared_prefix_lm

    model, tokenizer = request.getfixturevalue(family)
    pairs = [(c, ch) for c, options in zip(CONTEXTS, CHOICES, strict=True) for ch in options]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(requests)
    fast = shared_prefix_lm(model, tokenizer, batch_size, "cpu").loglikelihood(requests)
    assert len(fast) == len(reference) == len(pairs)
    for (ref_ll, ref_greedy), (ll, greedy) in zip(reference, fast, strict=True):
        assert ll == pytest.approx(ref_ll, abs=1e-4) and greedy == ref_greedy


def test_batched_greedy_generation_equals_one_at_a_time(tiny_llama):
    """Generation is HFLM's own: batched greedy decoding with stop sequences, same strings as batch 1."""
    from lm_eval.api.instance import Instance

    from cofitune.evaluation.harness import shared_prefix_lm

    model, tokenizer = tiny_llama
    prompts = ["What is 2 + 2?", "Name a planet.", "A longer prompt about the sea and the sky, then a question:", "Hi"]

    def requests(until):
        return [Instance("generate_until", {}, (p, {"until": until, "max_gen_toks": 12, "do_sample": False}), i)
                for i, p in enumerate(prompts)]

    one = shared_prefix_lm(model, tokenizer, 1, "cpu").generate_until(requests(["\n", "."]))
    batched = shared_prefix_lm(model, tokenizer, 4, "cpu").generate_until(requests(["\n", "."]))
    uneven = shared_prefix_lm(model, tokenizer, 3, "cpu").generate_until(requests(["\n", "."]))
    assert batched == one == uneven and len(one) == len(prompts)
    assert all("\n" not in text and "." not in text for text in batched)  # cut at the stop sequences
    unstopped = shared_prefix_lm(model, tokenizer, 4, "cpu").generate_until(requests([]))
    assert any(len(a) < len(b) for a, b in zip(batched, unstopped, strict=True))  # a row stopped while others ran on


def _token_requests(seed: int, contexts: list[int], choices: list[list[int]]):
    """Token-level requests: a random context of each length, with continuations of the given lengths."""
    generator = torch.Generator().manual_seed(seed)

    def tokens(n):
        return torch.randint(3, 300, (n,), generator=generator).tolist()

    requests = []
    for length, lengths in zip(contexts, choices, strict=True):
        context = tokens(length)
        requests += [((f"c{len(requests)}", "x"), context, tokens(n)) for n in lengths]
    return requests


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2"])
def test_shared_prefix_tokens_single_multi_and_near_the_position_limit(family, request):
    """Single-token continuations only (one pass), mixed lengths, a context near the model's 1024
    positions batched with a short context's long continuation (its padded columns must not run past
    the position table), and a context too long for the model (HFLM's truncating path)."""
    from lm_eval.models.huggingface import HFLM

    from cofitune.evaluation.harness import shared_prefix_lm

    model, tokenizer = request.getfixturevalue(family)
    cases = [
        _token_requests(1, [7, 3, 12, 5], [[1, 1, 1, 1], [1, 1], [1, 1, 1], [1]]),
        _token_requests(2, [9, 2, 15, 4, 6], [[1, 4, 2], [3], [1, 1], [5, 1, 2, 2], [2, 6]]),
        _token_requests(3, [1000, 10, 1030], [[1, 1], [30, 1, 2], [2, 1]]),
    ]
    reference_lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    for requests in cases:
        reference = reference_lm._loglikelihood_tokens(requests, disable_tqdm=True)
        for batch_size in (1, 2, 3):
            fast = shared_prefix_lm(model, tokenizer, batch_size, "cpu")._loglikelihood_tokens(requests, disable_tqdm=True)
            assert len(fast) == len(reference) == len(requests)
            for (ref_ll, ref_greedy), (ll, greedy) in zip(reference, fast, strict=True):
                assert ll == pytest.approx(ref_ll, abs=1e-4) and greedy == ref_greedy
