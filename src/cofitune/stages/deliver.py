"""Rules `write_final_model` (results/final/: the CoFiTune model as a Hugging Face folder with its
model card) and `export_region` (results/export/: the region for other trainers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from cofitune import io
from cofitune.candidates import BASE_ID
from cofitune.methods import Method
from cofitune.modeling import save_model
from cofitune.records import TrainRecord
from cofitune.stages.common import load_candidate_model

log = logging.getLogger(__name__)

REFERENCE_ROWS = (BASE_ID, str(Method.FULL_SFT))  # shown under the final model in its card


def base_dtype(model_dir: str | Path) -> torch.dtype:
    """The dtype the prepared base model is stored in (what its config.json declares)."""
    from transformers import AutoConfig

    declared = getattr(AutoConfig.from_pretrained(model_dir), "dtype", None) or torch.float32
    return getattr(torch, declared) if isinstance(declared, str) else declared


def card_rows(summary: pa.Table, candidate: str) -> pa.Table:
    """The final model's summary row, then those of the base model and full SFT where present."""
    rows = {row["candidate"]: row for row in summary.to_pylist()}
    if candidate not in rows:
        raise KeyError(f"{candidate!r} has no row in the summary table")
    order = [candidate, *(c for c in REFERENCE_ROWS if c in rows and c != candidate)]
    return pa.Table.from_pylist([rows[c] for c in order], schema=summary.schema)


def write_final_model(
    model_dir: str | Path, trained_file: str | Path, train_metrics: str | Path, summary_file: str | Path,
    candidate: str, config: Mapping[str, Any], importance_sources: Mapping[str, Sequence[str]], out_dir: str | Path,
) -> None:
    from cofitune.modelcard import FinalModel, region_manifest, render_model_card
    from cofitune.provenance import config_hash, package_versions

    dtype = base_dtype(model_dir)
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    model.to(dtype)
    record = TrainRecord.read(train_metrics)
    final = FinalModel(
        candidate=candidate, base_model=config["model"]["name_or_path"], base_revision=config["model"].get("revision"),
        dtype=str(dtype).removeprefix("torch."), train=record, trained_names=sorted(io.load_tensors(trained_file)),
        training=config["training"], train_files=config["speciality"]["train"],
        importance_sources=importance_sources if record.softmask else {},
        summary=card_rows(io.read_parquet(summary_file), candidate), config_hash=config_hash(config),
        versions=package_versions(),
    )
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)
        io.write_json(Path(tmp) / "region.json", region_manifest(final))
        io.write_text(Path(tmp) / "README.md", render_model_card(final))
    log.info("final model %s written to %s (%s)", candidate, out_dir, final.dtype)
