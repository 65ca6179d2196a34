"""Rule `evaluate_candidate`: lm-eval speciality and versatility benchmarks of one model."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofitune import io, regions
from cofitune.records import EvalRecord
from cofitune.stages.common import load_candidate_model, resolve_device
from cofitune.tasks import SPECIALITY_PREFIX


def evaluation_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What every evaluating and scoring rule needs of a (validated) config, in one JSON-able dict."""
    return {
        **config["evaluation"],
        "speciality": [SPECIALITY_PREFIX + name for name in config["speciality"]["tasks"]],
        "groups": config["versatility"]["groups"],
        "metrics": config["versatility"]["metrics"],
        "include_path": [str(Path(p).resolve()) for p in config["versatility"]["include_path"]],
        "seed": config["seed"],
    }


def eval_plan(evaluation: Mapping[str, Any], tasks_dir: str | Path):
    """The workflow's evaluation settings (config section plus resolved task names) as an EvalPlan."""
    from cofitune.evaluate import EvalPlan

    return EvalPlan(
        speciality=tuple(evaluation["speciality"]),
        groups={g: tuple(t) for g, t in evaluation["groups"].items()},
        formats=tuple(evaluation["formats"]),
        include_path=(str(Path(tasks_dir).resolve()), *evaluation.get("include_path", [])),
        batch_size=evaluation["batch_size"],
        limit=evaluation.get("limit"),
        metrics=evaluation.get("metrics", {}),
        seed=evaluation["seed"],
    )


def evaluate_candidate(
    model_dir: str | Path, trained_file: str | Path | None, tasks_dir: str | Path, evaluation: Mapping[str, Any],
    candidate_id: str, metrics_file: str | Path, samples_file: str | Path,
) -> None:
    from cofitune.evaluate import evaluate_model
    from cofitune.tables import samples_table

    plan = eval_plan(evaluation, tasks_dir)
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    device = resolve_device(evaluation.get("device", "auto"))
    model.to(device)
    start = time.perf_counter()
    output = evaluate_model(model, tokenizer, plan, device=device)
    io.write_parquet(samples_file, samples_table(candidate_id, output.samples))
    EvalRecord(
        candidate=candidate_id, metrics=output.metrics, batch_size=plan.batch_size, limit=plan.limit, device=device,
        wall_seconds=time.perf_counter() - start, total_params=regions.count_parameters(model),
    ).write(metrics_file)
