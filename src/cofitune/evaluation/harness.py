"""Evaluation through lm-evaluation-harness's Python API, on an in-memory model.

One `simple_evaluate` call per prompt format: "plain" (speciality tasks, whose prompts are already
rendered like the training data, plus versatility tasks as lm-eval formats them when the plan asks
for that format) and "chat" (versatility tasks wrapped in the model's chat template by lm-eval).
Every call scores only the documents of the plan's item split (`cofitune.evaluation.splits`), passed to lm-eval
as `samples=` (task -> document indices); no data is rewritten. No request cache is used: it is
keyed by request, not by model, and would hand one model's answers to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from cofitune.evaluation.settings import FewshotSettings
from cofitune.evaluation.splits import CONFIRM, SplitSizes, capped_tasks, documents_for

log = logging.getLogger(__name__)

FORMATS = ("plain", "chat")
DEFAULT_METRICS = ("acc,none", "exact_match,strip", "exact_match,none")


@dataclass(frozen=True)
class EvalPlan:
    speciality: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]  # versatility group -> lm-eval task names
    formats: tuple[str, ...] = ("plain",)  # the versatility tasks' formats (speciality tasks: always plain)
    include_path: tuple[str, ...] = ()
    batch_size: int = 8
    split: str = CONFIRM  # the item split scored (a label only, when `sizes` is None)
    sizes: SplitSizes | None = None  # None: every document of every task
    metrics: Mapping[str, str] = field(default_factory=dict)  # task -> metric key, e.g. "exact_match,strict-match"
    seed: int = 1234  # lm-eval's seeds and the split's permutation
    fewshot: Mapping[str, FewshotSettings] = field(default_factory=dict)  # task -> its settings (absent: the defaults)

    def passes(self) -> list[str]:
        """The prompt formats evaluated, each one or more `simple_evaluate` calls (`calls`)."""
        return [fmt for fmt in FORMATS if self.tasks_for(fmt)]

    def calls(self, fmt: str) -> list[tuple[FewshotSettings, list[str]]]:
        """The tasks of one format grouped by their few-shot settings: one `simple_evaluate` call each
        (lm-eval takes one setting per call); in task order, so one setting for all is one call."""
        grouped: dict[FewshotSettings, list[str]] = {}
        for task in self.tasks_for(fmt):
            grouped.setdefault(self.fewshot.get(task, FewshotSettings()).for_format(fmt), []).append(task)
        return list(grouped.items())

    def tasks_for(self, fmt: str) -> list[str]:
        versatility = [t for tasks in self.groups.values() for t in tasks] if fmt in self.formats else []
        return [*self.speciality, *versatility] if fmt == "plain" else versatility


# One row per evaluated item of one model (the samples file; aggregate_tables concatenates them).
SAMPLES_SCHEMA = pa.schema(
    [
        ("candidate", pa.string()),
        ("format", pa.string()),
        ("task", pa.string()),
        ("doc_id", pa.int64()),
        ("split", pa.string()),
        ("target", pa.string()),
        ("prediction", pa.string()),
        ("score", pa.float64()),
    ]
)


def samples_table(candidate_id: str, samples: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The samples file of one evaluation: one row per (format, task, item), in SAMPLES_SCHEMA."""
    return pa.Table.from_pylist([{"candidate": candidate_id, **s} for s in samples], schema=SAMPLES_SCHEMA)


@dataclass
class EvalOutput:
    metrics: list[dict[str, Any]]  # one row per (format, task): value in [0, 1]
    samples: list[dict[str, Any]]  # one row per (format, task, item)


def shared_prefix_lm(model: nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int, device: str):
    """lm-eval's HFLM, except that log-likelihood requests sharing a context encode it once, and
    several contexts are encoded together.

    Multiple-choice tasks ask for k continuations of one context; HFLM runs k full sequences.
    Here `batch_size` counts questions (distinct contexts), not sequences: up to that many contexts
    run in one left-padded forward pass (longest first, like HFLM), then every continuation of those
    questions runs in a second pass against its own context's key/value cache (see
    `score_shared_prefix`). A batch of 8 four-choice questions thus scores 32 continuation rows.
    Requests that HFLM would truncate, or with an empty piece, and every request when the batch size
    is "auto", take HFLM's own path. Results come back in request order and equal HFLM's (tested on
    Llama, GPT-2 and GPT-NeoX shapes, abs 1e-4, same greedy flags).

    Generation is HFLM's own `generate_until`: it already batches greedy decoding by `batch_size`
    (left padding, attention mask, per-batch stop-sequence criteria, each answer cut at its first
    stop sequence); tested to give batch size 1's strings.
    """
    from lm_eval.models.huggingface import HFLM

    class SharedPrefixHFLM(HFLM):
        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
            size = override_bs or self.batch_size
            if not isinstance(size, int):  # "auto": HFLM's own batch-size search and path
                return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
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
            size = max(1, size)
            autocast = torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                      enabled=self.mixed_precision_dtype is not None)  # as HFLM's model calls
            for start in range(0, len(batchable), size):
                chunk = batchable[start : start + size]
                with autocast:
                    scored = score_shared_prefix(self.model, [c for c, _ in chunk],
                                                 [[requests[i][2] for i in m] for _, m in chunk], self.device)
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
    """(log-likelihood, is-greedy) of each continuation of each context, two forward passes in all.

    1. The contexts, left-padded to one width (attention mask 0 on the padding, position ids counted
       from each context's first real token, which absolute-position models such as GPT-2 need).
       Only the last column's logits are kept: they score every continuation's first token.
    2. If any continuation is longer than one token: the key/value cache is gathered so that each
       continuation row holds its own context's cache, and all continuations, minus their last token
       (nothing scores what follows it), run as one right-padded batch against it; their positions
       continue from their context's real length. A padded column repeats its row's last real
       position, so that no row runs past the model's position table when another question of the
       batch has a longer continuation.
    Scores are gathered on the device and leave it once (one synchronisation per batch).
    """
    width = max(map(len, contexts))
    ids = torch.zeros((len(contexts), width), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, context in enumerate(contexts):  # left padding: every context ends at the last column
        ids[row, width - len(context) :] = torch.tensor(context, device=device)
        mask[row, width - len(context) :] = 1
    keep = {"logits_to_keep": 1} if _keeps_logits(model) else {}
    prefix = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0), use_cache=True, **keep)
    flat = [c for options in continuations for c in options]
    longest = max(map(len, flat))
    owner = torch.tensor([q for q, options in enumerate(continuations) for _ in options], device=device)
    lengths = torch.tensor([len(c) for c in flat], device=device)
    targets = torch.tensor([[*c, *[0] * (longest - len(c))] for c in flat], device=device)
    logits = prefix.logits[:, -1].float()[owner, None]  # (rows, 1, vocab): predicts each first token
    if longest > 1:
        cache = prefix.past_key_values
        cache.batch_select_indices(owner)
        steps = torch.arange(longest - 1, device=device)
        positions = mask.sum(-1)[owner, None] + torch.minimum(steps, lengths[:, None] - 1)
        rest = model(input_ids=targets[:, :-1], past_key_values=cache, position_ids=positions,
                     attention_mask=torch.cat([mask[owner], torch.ones_like(targets[:, :-1])], dim=1))
        logits = torch.cat([logits, rest.logits.float()], dim=1)  # (rows, longest, vocab)
    logprobs = logits.gather(-1, targets[..., None]).squeeze(-1) - logits.logsumexp(-1)
    real = torch.arange(longest, device=device) < lengths[:, None]
    totals = torch.where(real, logprobs, 0.0).sum(-1).tolist()
    greedy = ((logits.argmax(-1) == targets) | ~real).all(-1).tolist()
    answers: list[list[tuple[float, bool]]] = [[] for _ in contexts]
    for question, total, hit in zip(owner.tolist(), totals, greedy, strict=True):
        answers[question].append((total, hit))
    return answers


def _keeps_logits(model: nn.Module) -> bool:
    """Whether the model's forward takes `logits_to_keep` (skip the vocabulary projection elsewhere)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def evaluate_model(model: nn.Module, tokenizer: PreTrainedTokenizerBase, plan: EvalPlan, device: str = "cpu") -> EvalOutput:
    unknown = sorted(set(plan.formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown prompt format(s) {unknown}; expected some of {FORMATS}")
    lm = shared_prefix_lm(model, tokenizer, plan.batch_size, device)
    every_task = list(dict.fromkeys(t for fmt in plan.passes() for t in plan.tasks_for(fmt)))
    manager = task_manager(plan.include_path, every_task)
    documents = split_documents_of(every_task, manager, plan)
    output = EvalOutput([], [])
    for fmt in plan.passes():
        for fewshot, tasks in plan.calls(fmt):
            samples = {t: documents[t] for t in tasks} if documents is not None else None
            raw = _simple_evaluate(lm, tasks, plan, manager, samples, apply_chat_template=fmt == "chat", fewshot=fewshot)
            for task in tasks:
                metric = resolve_metric(task, raw["results"][task], plan.metrics.get(task))
                output.metrics.append(_metric_row(fmt, task, metric, raw, fewshot))
                output.samples.extend(_sample_rows(fmt, task, metric, raw["samples"][task], plan.split))
    return output


def split_documents_of(tasks: Sequence[str], manager, plan: EvalPlan) -> dict[str, list[int]] | None:
    """task -> the document indices of the plan's split (None: every document)."""
    if plan.sizes is None:
        return None
    counts = document_counts(tasks, manager)
    for task in capped_tasks(counts, plan.sizes):
        log.warning("task %s has %d items: fewer than evaluation.select %r plus evaluation.confirm %r ask for; "
                    "select keeps its size, confirm takes the rest", task, counts[task], plan.sizes.select, plan.sizes.confirm)
    documents = documents_for(plan.split, counts, plan.sizes, plan.seed)
    log.info("%s split: %s", plan.split, ", ".join(f"{t} {len(d)} of {counts[t]}" for t, d in documents.items()))
    return documents


def document_counts(tasks: Sequence[str], manager) -> dict[str, int]:
    """task -> how many documents lm-eval evaluates it on (its test split, else its validation split)."""
    from lm_eval.tasks import get_task_dict

    loaded = get_task_dict(list(tasks), manager)
    counts = {}
    for task in tasks:
        found = loaded.get(task)
        if found is None or isinstance(found, dict):
            raise ValueError(f"lm-eval task {task!r} is a group of tasks; list its tasks in versatility.groups instead")
        counts[task] = len(found.eval_docs)
    return counts


def task_manager(include_path: Sequence[str], needed: Sequence[str]):
    """Index only our own YAMLs (0.1 s) unless a needed task is one of lm-eval's built-ins (5 s)."""
    manager, unknown = _index(include_path, needed)
    if unknown:
        raise ValueError(f"unknown lm-eval task(s) {unknown}: not built in and not under {list(include_path)}")
    return manager


def _index(include_path: Sequence[str], needed: Sequence[str]):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=list(include_path) or None, include_defaults=False)
    missing = [t for t in needed if t not in manager.all_tasks]
    if missing:
        log.info("indexing lm-eval's built-in tasks for %s", missing)
        manager = TaskManager(include_path=list(include_path) or None, include_defaults=True)
    return manager, [t for t in needed if t not in manager.all_tasks]


def _simple_evaluate(lm, tasks: list[str], plan: EvalPlan, manager, samples: Mapping[str, list[int]] | None,
                     apply_chat_template: bool, fewshot: FewshotSettings) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    # lm-eval maps the n-th evaluated document back to samples[task][n]: the indices must be sorted
    # (cofitune.evaluation.splits sorts them), or every logged doc_id is another document's.
    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=manager,
        samples=dict(samples) if samples is not None else None,
        log_samples=True,
        apply_chat_template=apply_chat_template,
        # every prompt setting explicit: lm-eval's defaults change between versions
        num_fewshot=fewshot.num_fewshot,
        fewshot_as_multiturn=fewshot.fewshot_as_multiturn,
        system_instruction=fewshot.system_instruction,
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


def _metric_row(fmt: str, task: str, metric: str, raw: Mapping[str, Any], fewshot: FewshotSettings) -> dict[str, Any]:
    task_results = raw["results"][task]
    return {
        "format": fmt,
        "task": task,
        "metric": metric,
        "value": float(task_results[metric]),  # lm-eval gives numpy floats; Arrow wants plain ones
        "n": int(raw.get("n-samples", {}).get(task, {}).get("effective", 0)),
        # what lm-eval applied: a task whose own YAML says `num_fewshot: 0` keeps 0 whatever is asked
        "num_fewshot": int(raw.get("configs", {}).get(task, {}).get("num_fewshot") or 0),
        "fewshot_as_multiturn": fewshot.fewshot_as_multiturn,
        "system_instruction": fewshot.system_instruction,
    }


def _sample_rows(fmt: str, task: str, metric: str, samples: Sequence[Mapping[str, Any]], split: str) -> list[dict[str, Any]]:
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
                "split": split,
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
