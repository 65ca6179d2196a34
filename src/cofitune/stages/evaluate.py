"""Rule `evaluate_candidate`: lm-eval speciality and versatility benchmarks of one model on one item split.

On *select* (search nodes: what the search decides on) only what the decision reads is scored: the
speciality tasks and the versatility tasks in `rank_format`, no KL. On *confirm* (the models the run
reports) every configured format and the KL forgetting signal."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from cofitune.evaluation.settings import EvaluationSection
from cofitune.evaluation.splits import CONFIRM, SELECT
from cofitune.infra import io
from cofitune.infra.records import EvalRecord
from cofitune.models import regions
from cofitune.stages.common import load_candidate_model, resolve_device

log = logging.getLogger(__name__)


def eval_plan(evaluation: EvaluationSection, tasks_dir: str | Path, split: str = CONFIRM):
    """The evaluation settings as the EvalPlan of one item split: *select* scores versatility in
    `rank_format` only, *confirm* in every format."""
    from cofitune.evaluation.harness import EvalPlan

    return EvalPlan(
        speciality=evaluation.speciality, groups=evaluation.groups,
        formats=(evaluation.rank_format,) if split == SELECT else evaluation.formats,
        include_path=(str(Path(tasks_dir).resolve()), *evaluation.include_path), batch_size=evaluation.batch_size,
        split=split, sizes=evaluation.sizes, metrics=evaluation.metrics, seed=evaluation.seed, fewshot=evaluation.fewshot,
    )


def evaluate_candidate(
    *, model_dir: str | Path, trained_file: str | Path | None, tasks_dir: str | Path, evaluation: EvaluationSection,
    candidate_id: str, split: str, metrics_file: str | Path, samples_file: str | Path, kl_files: Sequence[str | Path] = (),
) -> None:
    from cofitune.evaluation.harness import evaluate_model, samples_table

    plan = eval_plan(evaluation, tasks_dir, split)
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    device = resolve_device(evaluation.device)
    model.to(device)
    start = time.perf_counter()
    output = evaluate_model(model, tokenizer, plan, device=device)
    wall_seconds = time.perf_counter() - start
    # the forgetting signal is reported with the confirm scores only; the search does not read it
    kl, kl_tokens = kl_from_base(model=model, tokenizer=tokenizer, model_dir=model_dir, trained_file=trained_file,
                                 files=kl_files if split == CONFIRM else (), evaluation=evaluation, device=device)
    io.write_parquet(samples_file, samples_table(candidate_id, output.samples))
    EvalRecord(
        candidate=candidate_id, split=split, metrics=output.metrics, batch_size=plan.batch_size, device=device,
        wall_seconds=wall_seconds, total_params=regions.count_parameters(model), kl_base=kl, kl_tokens=kl_tokens,
    ).write(metrics_file)


def kl_from_base(
    *, model, tokenizer, model_dir: str | Path, trained_file: str | Path | None, files: Sequence[str | Path],
    evaluation: EvaluationSection, device: str,
) -> tuple[float | None, int]:
    """Mean KL(base || model) per token on the first `kl_examples` examples of `files` (0 for the base model)."""
    from cofitune.data.sft import collate, tokenize_examples, validate_file
    from cofitune.evaluation.forgetting import mean_token_kl

    n = evaluation.kl_examples
    if not n or not files:
        return None, 0
    if trained_file is None:
        return 0.0, 0  # the base model itself
    examples = [ex for path in files for ex in validate_file(path)][:n]
    rows, _ = tokenize_examples(tokenizer, examples, evaluation.kl_max_length, loss_on="all", truncation="right")  # plain text: keep its start
    size = evaluation.batch_size
    batches = [collate(rows[i : i + size], tokenizer.pad_token_id) for i in range(0, len(rows), size)]
    base, _ = load_candidate_model(model_dir, None)
    kl, tokens = mean_token_kl(base.to(device), model, batches, device)
    log.info("KL(base || model) = %.5f nats per token over %d tokens of %d examples", kl, tokens, len(rows))
    return kl, tokens
