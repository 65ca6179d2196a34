"""Rules `prepare_data` (tokenized SFT data) and `make_tasks` (lm-eval task YAMLs)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cofitune.data.sft import TokenizeReport, check_losses, source_label, tokenize_examples, validate_file
from cofitune.evaluation.tasks import (
    SPECIALITY_PREFIX,
    generation_task,
    multiple_choice_task,
    speciality_rows,
    validate_mc_file,
    validate_speciality_file,
)
from cofitune.infra import io
from cofitune.models.modeling import load_prepared

log = logging.getLogger(__name__)


def prepare_data(
    *, model_dir: str | Path, train_files: Sequence[str | Path | Mapping[str, Any]], max_length: int, loss_on: str,
    out_dir: str | Path, report_file: str | Path, truncation: str = "left", max_dropped_share: float = 0.01,
) -> TokenizeReport:
    """Validate and tokenize the SFT data once; the Arrow dataset is shared by every training job.
    `train_files`: speciality.train's entries (paths, hf:org/name, or objects with options).
    Every file's losses are counted and logged; a file that loses too much stops the run here."""
    _, tokenizer = load_prepared(model_dir)
    rows, reports = [], {}
    for entry in train_files:
        file_rows, reports[source_label(entry)] = tokenize_examples(tokenizer, validate_file(entry), max_length, loss_on, truncation)
        rows += file_rows
    for path, report in reports.items():
        level = logging.WARNING if report.dropped_no_target else logging.INFO
        log.log(level, "%s: %d examples kept, %d truncated to %d tokens (from the %s), %d dropped without a response token; "
                "the longest has %d tokens", path, report.examples, report.truncated, max_length, truncation, report.dropped_no_target,
                report.longest)
    check_losses(reports, max_length, max_dropped_share)
    total = TokenizeReport()
    for report in reports.values():
        total.add(report)
    io.write_dataset(out_dir, rows)
    io.write_json(report_file, {**total.__dict__, "max_length": max_length, "loss_on": loss_on, "truncation": truncation,
                                "files": [source_label(p) for p in train_files], "per_file": {p: r.__dict__ for p, r in reports.items()}})
    return total


def make_tasks(
    *, model_dir: str | Path,
    speciality: Mapping[str, Mapping[str, Any]],
    local_versatility: Mapping[str, str | Path],
    out_dir: str | Path,
) -> None:
    """Render lm-eval task YAMLs (and their rows) for the speciality tests and our own suite."""
    _, tokenizer = load_prepared(model_dir)
    out_dir = Path(out_dir).resolve()
    with io.atomic_dir(out_dir) as tmp:
        for name, spec in speciality.items():
            task = SPECIALITY_PREFIX + name
            records, kind = validate_speciality_file(spec["test"])
            io.write_jsonl(tmp / f"{task}.jsonl", speciality_rows(records, tokenizer))
            config = (
                generation_task(task, out_dir / f"{task}.jsonl", spec.get("max_gen_toks", 32))
                if kind == "generate_until"
                else multiple_choice_task(task, out_dir / f"{task}.jsonl", prompt_field="prompt")
            )
            io.write_yaml(tmp / f"{task}.yaml", config)
        for task, path in local_versatility.items():
            io.write_jsonl(tmp / f"{task}.jsonl", validate_mc_file(path))
            io.write_yaml(tmp / f"{task}.yaml", multiple_choice_task(task, out_dir / f"{task}.jsonl"))
