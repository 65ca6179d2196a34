"""Evaluation through lm-evaluation-harness's Python API, on an in-memory model.

One `simple_evaluate` call per prompt format: "plain" (speciality tasks, whose prompts are already
rendered like the training data, plus versatility tasks as lm-eval formats them) and "chat"
(versatility tasks wrapped in the model's chat template by lm-eval). No request cache is used: it
is keyed by request, not by model, and would hand one model's answers to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

FORMATS = ("plain", "chat")
DEFAULT_METRICS = ("acc,none", "exact_match,strip", "exact_match,none")


@dataclass(frozen=True)
class EvalPlan:
    speciality: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]  # versatility group -> lm-eval task names
    formats: tuple[str, ...] = ("plain",)
    include_path: tuple[str, ...] = ()
    batch_size: int = 8
    limit: int | float | None = None
    metrics: Mapping[str, str] = field(default_factory=dict)  # task -> metric key, e.g. "exact_match,strict-match"
    seed: int = 1234

    def tasks_for(self, fmt: str) -> list[str]:
        versatility = [t for tasks in self.groups.values() for t in tasks]
        return [*self.speciality, *versatility] if fmt == "plain" else versatility


@dataclass
class EvalOutput:
    metrics: list[dict[str, Any]]  # one row per (format, task): value in [0, 1]
    samples: list[dict[str, Any]]  # one row per (format, task, item)


def shared_prefix_lm(model: nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int, device: str):
    """lm-eval's HFLM, except that log-likelihood requests sharing a context encode it once, and
    several contexts are encoded together.

    Multiple-choice tasks ask for k continuations of one context; HFLM runs k full sequences.
    Here up to `batch_size` contexts (questions) run in one left-padded forward pass; each context's
    key/value cache is repeated for its own continuations, and all continuations of the batch run in
    a second pass against those caches, with position ids counted from each context's real length.
    The numbers equal HFLM's (tested on Llama, GPT-2 and GPT-NeoX shapes); generation is HFLM's own,
    which already batches greedy decoding with stop sequences (tested against batch size 1).
    """
    from lm_eval.models.huggingface import HFLM

    class SharedPrefixHFLM(HFLM):
        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
            groups: dict[tuple[int, ...], list[int]] = {}
            for index, (_, context, _) in enumerate(requests):
                groups.setdefault(tuple(context), []).append(index)
            results: list[tuple[float, bool] | None] = [None] * len(requests)
            fallback, batchable = [], []
            for context, members in groups.items():
                continuations = [requests[i][2] for i in members]
                if not context or not all(continuations) or len(context) + max(map(len, continuations)) > self.max_length:
                    fallback += members  # truncation and empty pieces: HFLM's own path
                else:
                    batchable.append((list(context), members))
            batchable.sort(key=lambda group: -len(group[0]))  # similar lengths together: less padding
            size = max(1, int(override_bs or self.batch_size or 1))
            for start in range(0, len(batchable), size):
                chunk = batchable[start : start + size]
                scored = score_shared_prefix(self.model, [c for c, _ in chunk], [[requests[i][2] for i in m] for _, m in chunk],
                                             self.device)
                for (_, members), answers in zip(chunk, scored, strict=True):
                    for index, answer in zip(members, answers, strict=True):
                        results[index] = answer
                        self.cache_hook.add_partial("loglikelihood", requests[index][0], answer)
            if fallback:
                answers = super()._loglikelihood_tokens([requests[i] for i in fallback], disable_tqdm=True, override_bs=override_bs)
                for index, answer in zip(fallback, answers, strict=True):
                    results[index] = answer
            return results

    return SharedPrefixHFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)


@torch.no_grad()
def score_shared_prefix(
    model: nn.Module, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[Sequence[int]]], device: str | torch.device,
) -> list[list[tuple[float, bool]]]:
    """(log-likelihood, is-greedy) of each continuation of each context, two forward passes in all."""
    import torch.nn.functional as F

    width = max(map(len, contexts))
    ids = torch.zeros((len(contexts), width), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, context in enumerate(contexts):  # left padding: every context ends at the last column
        ids[row, width - len(context) :] = torch.tensor(context, device=device)
        mask[row, width - len(context) :] = 1
    prefix = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0), use_cache=True)
    first = F.log_softmax(prefix.logits[:, -1].float(), dim=-1)
    owner = torch.tensor([q for q, options in enumerate(continuations) for _ in options], device=device)
    flat = [c for options in continuations for c in options]
    longest = max(map(len, flat))
    rest = None
    if longest > 1:  # tokens after the first: one pass over every continuation against its context's cache
        cache = prefix.past_key_values
        cache.batch_select_indices(owner)
        cont = torch.tensor([c + [c[-1]] * (longest - len(c)) for c in flat], device=device)
        full_mask = torch.cat([mask[owner], torch.ones_like(cont)], dim=1)
        positions = mask.sum(-1)[owner, None] + torch.arange(longest, device=device)
        rest = F.log_softmax(model(input_ids=cont, past_key_values=cache, attention_mask=full_mask,
                                   position_ids=positions).logits.float(), dim=-1)
    answers: list[list[tuple[float, bool]]] = [[] for _ in contexts]
    for row, (question, tokens) in enumerate(zip(owner.tolist(), flat, strict=True)):
        steps = [first[question]] + ([rest[row, t] for t in range(len(tokens) - 1)] if rest is not None else [])
        logprob = sum(float(step[token]) for step, token in zip(steps, tokens, strict=True))
        greedy = all(int(step.argmax()) == token for step, token in zip(steps, tokens, strict=True))
        answers[question].append((logprob, greedy))
    return answers


def evaluate_model(model: nn.Module, tokenizer: PreTrainedTokenizerBase, plan: EvalPlan, device: str = "cpu") -> EvalOutput:
    lm = shared_prefix_lm(model, tokenizer, plan.batch_size, device)
    output = EvalOutput([], [])
    for fmt in plan.formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown prompt format {fmt!r}; expected one of {FORMATS}")
        tasks = plan.tasks_for(fmt)
        if not tasks:
            continue
        raw = _simple_evaluate(lm, tasks, plan, apply_chat_template=fmt == "chat")
        for task in tasks:
            metric = resolve_metric(task, raw["results"][task], plan.metrics.get(task))
            output.metrics.append(_metric_row(fmt, task, metric, raw))
            output.samples.extend(_sample_rows(fmt, task, metric, raw["samples"][task]))
    return output


def task_manager(include_path: Sequence[str], needed: Sequence[str]):
    """Index only our own YAMLs (0.1 s) unless a needed task is one of lm-eval's built-ins (5 s)."""
    manager, unknown = _index(include_path, needed)
    if unknown:
        raise ValueError(f"unknown lm-eval task(s) {unknown}: not built in and not under {list(include_path)}")
    return manager


def unknown_tasks(include_path: Sequence[str], names: Sequence[str]) -> list[str]:
    """The names that are neither task YAMLs under `include_path` nor lm-eval built-ins."""
    return _index(include_path, names)[1]


def _index(include_path: Sequence[str], needed: Sequence[str]):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=list(include_path) or None, include_defaults=False)
    missing = [t for t in needed if t not in manager.all_tasks]
    if missing:
        log.info("indexing lm-eval's built-in tasks for %s", missing)
        manager = TaskManager(include_path=list(include_path) or None, include_defaults=True)
    return manager, [t for t in needed if t not in manager.all_tasks]


def _simple_evaluate(lm, tasks: list[str], plan: EvalPlan, apply_chat_template: bool) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=task_manager(plan.include_path, tasks),
        limit=plan.limit,
        log_samples=True,
        apply_chat_template=apply_chat_template,
        cache_requests=False,
        bootstrap_iters=0,  # we bootstrap ourselves over the kept per-item scores
        random_seed=plan.seed,
        numpy_random_seed=plan.seed,
        torch_random_seed=plan.seed,
        fewshot_random_seed=plan.seed,
    )
    if results is None:
        raise RuntimeError("lm-eval returned no results (non-zero rank?)")
    return results


def resolve_metric(task: str, task_results: Mapping[str, Any], configured: str | None) -> str:
    """The metric key that scores `task`: configured, else acc, else exact match."""
    if configured:
        if configured not in task_results:
            raise KeyError(f"task {task!r} has no metric {configured!r}; it reports {sorted(_metric_keys(task_results))}")
        return configured
    for key in DEFAULT_METRICS:
        if key in task_results:
            return key
    candidates = [k for k in _metric_keys(task_results) if k.startswith("exact_match,")]
    if candidates:
        return candidates[0]
    raise KeyError(f"task {task!r}: set its metric in the config; it reports {sorted(_metric_keys(task_results))}")


def _metric_keys(task_results: Mapping[str, Any]) -> list[str]:
    return [k for k in task_results if "," in k and "_stderr" not in k]


def _metric_row(fmt: str, task: str, metric: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    task_results = raw["results"][task]
    return {
        "format": fmt,
        "task": task,
        "metric": metric,
        "value": float(task_results[metric]),  # lm-eval gives numpy floats; Arrow wants plain ones
        "n": int(raw.get("n-samples", {}).get(task, {}).get("effective", 0)),
    }


def _sample_rows(fmt: str, task: str, metric: str, samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    name, _, filt = metric.partition(",")
    rows = []
    for sample in samples:
        if sample.get("filter", filt) != filt:
            continue
        rows.append(
            {
                "format": fmt,
                "task": task,
                "doc_id": int(sample["doc_id"]),
                "target": str(sample.get("target")),
                "prediction": _prediction(sample),
                "score": float(sample[name]),
            }
        )
    return rows


def _prediction(sample: Mapping[str, Any]) -> str:
    """Generation tasks: the filtered answer; multiple choice: the index of the likeliest choice."""
    resps = sample.get("filtered_resps")
    if not resps:
        return ""
    if isinstance(resps[0], list | tuple) and len(resps[0]) == 2 and isinstance(resps[0][0], float):
        logliks = [r[0] for r in resps]
        return str(max(range(len(logliks)), key=logliks.__getitem__))
    return str(resps[0])
