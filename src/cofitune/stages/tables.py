"""Rules `aggregate_tables`, `summarise_results` and `plot_results`: Parquet tables, Markdown, plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra import io
from cofitune.infra.records import EvalRecord, LevelDecision, TrainRecord
from cofitune.methods.candidates import BASE


def aggregate(
    *, metrics_files: Sequence[str | Path], train_metrics_files: Mapping[str, str | Path], samples_files: Sequence[str | Path],
    evaluation: EvaluationSection, config: Mapping[str, Any], candidates_out: str | Path, samples_out: str | Path,
) -> None:
    """candidates.parquet (one row per evaluation: a model on one item split) and samples.parquet
    (one row per evaluated item)."""
    import pyarrow as pa

    from cofitune.evidence.tables import candidates_table

    records = []
    for metrics_file in metrics_files:
        evaluated = EvalRecord.read(metrics_file)
        train_file = train_metrics_files.get(evaluated.candidate)
        trained = TrainRecord.read(train_file) if train_file else TrainRecord.untrained(
            BASE.describe(), {}, [], evaluated.total_params, config["seed"])
        records.append((evaluated, trained))
    io.write_parquet(candidates_out, candidates_table(records, evaluation, config))
    io.write_parquet(samples_out, pa.concat_tables([io.read_parquet(p) for p in samples_files]))


def summarise(
    *, candidates_file: str | Path, samples_file: str | Path, level_files: Sequence[str | Path], final_id: str | None,
    evaluation: EvaluationSection, seed: int, summary_out: str | Path, markdown_out: str | Path, trace_out: str | Path,
    claims_out: str | Path, fixed_rules: Mapping[str, str] | None = None,
) -> None:
    """summary.parquet (+ Markdown) with bootstrap intervals, the claims with theirs, and the search
    trace. The summary and the claims read the confirm evaluations only; the chosen search node's
    select score (what the search saw) stands beside its confirm score as the selection optimism."""
    import pyarrow.compute as pc

    from cofitune.evaluation.scores import (
        item_scores_by_task,
        paired_difference_tests,
        resampled_intervals,
        resampled_scores,
    )
    from cofitune.evaluation.splits import CONFIRM, split_item_counts
    from cofitune.evidence.claims import claims_for, claims_table
    from cofitune.evidence.markdown import markdown_report, search_confidence_markdown
    from cofitune.evidence.tables import SplitReport, search_choice_on_both, search_trace_table, summary_table

    evaluations = io.read_parquet(candidates_file)
    candidates = evaluations.filter(pc.equal(evaluations["eval_split"], CONFIRM))
    ids = candidates.column("candidate").to_pylist()
    replicates: dict[str, list[str]] = {}
    for candidate, model in zip(ids, candidates.column("model").to_pylist(), strict=True):
        replicates.setdefault(model, []).append(candidate)
    samples = io.read_parquet(samples_file).to_pylist()
    item_scores = item_scores_by_task(s for s in samples if s["split"] == CONFIRM)
    # one set of paired draws serves the summary's intervals and the claims' tests; enough of them
    # that a Holm-adjusted p-value over a few dozen rows can reach 0.05 at all
    resampled = resampled_scores(item_scores, ids, evaluation.speciality, evaluation.groups, evaluation.rank_format,
                                 n_resamples=RESAMPLES, seed=seed, replicates=replicates)
    levels = [LevelDecision.read(p) for p in level_files]
    report = SplitReport(split_item_counts(samples), **search_choice_on_both(levels, evaluations.to_pylist()))
    summary = summary_table(candidates, resampled_intervals(resampled, {"base": "base", "full_sft": "full_sft"}), final_id, report)
    rows = summary.to_pylist()
    claims = claims_for(rows, final_id, fixed_rules)
    claims = claims_table(rows, claims, paired_difference_tests(resampled, [(c.model, c.reference) for c in claims]))
    trace = search_trace_table(levels)
    io.write_parquet(summary_out, summary)
    io.write_parquet(claims_out, claims)
    io.write_text(markdown_out, markdown_report(summary, claims) + "\n" + search_confidence_markdown(trace) + "\n")
    io.write_parquet(trace_out, trace)


RESAMPLES = 5000  # paired bootstrap draws of the summary and the claims (the smallest p-value is 2 / 5001)


def plot_results(
    *, summary_file: str | Path, train_metrics_files: Sequence[str | Path], rank_format: str, tradeoff_out: str | Path, loss_out: str | Path
) -> None:
    from cofitune.evidence.plots import loss_curves, tradeoff_scatter

    with io.atomic_path(tradeoff_out) as tmp:
        tradeoff_scatter(io.read_parquet(summary_file).to_pylist(), tmp, rank_format)
    records = [TrainRecord.read(path) for path in train_metrics_files]
    with io.atomic_path(loss_out) as tmp:
        loss_curves({r.candidate: r.history for r in records}, tmp)
