"""Rules `write_final_model` (results/final/: the CoFiTune model as a Hugging Face folder with its
model card) and `export_region` (results/export/: the region for other trainers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from cofitune.data.sft import source_label
from cofitune.infra import io
from cofitune.infra.records import TrainRecord
from cofitune.methods.candidates import BASE_ID
from cofitune.methods.recipes import Method
from cofitune.models.modeling import save_model
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
    *, model_dir: str | Path, trained_file: str | Path, train_metrics: str | Path, summary_file: str | Path,
    candidate: str, config: Mapping[str, Any], importance_sources: Mapping[str, Sequence[str]], out_dir: str | Path,
    claims_file: str | Path | None = None, region_source: str = "searched by this run",
) -> None:
    """results/final/: the model, its card and region.json. A region reused from another run
    (`search.reuse`) must come from a model of this one's family: checked here, where the model is
    loaded, for the models whose family the pre-flight could not know."""
    from cofitune.handoff.modelcard import FinalModel, render_model_card
    from cofitune.handoff.region_file import REGION_FILE, family_error, read_region, region_manifest
    from cofitune.infra.provenance import config_hash, package_versions
    from cofitune.models import regions

    dtype = base_dtype(model_dir)
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    reuse = config.get("search", {}).get("reuse")
    if reuse and (problem := family_error(read_region(reuse), model.config.model_type)):
        raise ValueError(problem)
    model.to(dtype)
    record = TrainRecord.read(train_metrics)
    final = FinalModel(
        candidate=candidate, base_model=config["model"]["name_or_path"], base_revision=config["model"].get("revision"),
        dtype=str(dtype).removeprefix("torch."), train=record, trained_names=sorted(io.load_tensors(trained_file)),
        training=config["training"], train_files=[source_label(e) for e in config["speciality"]["train"]],
        importance_sources={name: [source_label(e) for e in entries] for name, entries in importance_sources.items()}
        if record.softmask else {},
        summary=card_rows(io.read_parquet(summary_file), candidate), config_hash=config_hash(config),
        versions=package_versions(), claims=io.read_parquet(claims_file) if claims_file else None,
        model_type=model.config.model_type, n_layers=len(regions.decoder_layers(model)), region_source=region_source,
    )
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)
        io.write_json(Path(tmp) / REGION_FILE, region_manifest(final))
        io.write_text(Path(tmp) / "README.md", render_model_card(final))
    log.info("final model %s written to %s (%s)", candidate, out_dir, final.dtype)


def export_region(*, model_dir: str | Path, trained_file: str | Path, train_metrics: str | Path, candidate: str,
                  out_dir: str | Path) -> None:
    """results/export/: the final model's region for axolotl, PEFT and torchtune, with a README."""
    from cofitune.handoff.exports import export_region as region_for_trainers
    from cofitune.models.modeling import empty_model

    record = TrainRecord.read(train_metrics)
    export = region_for_trainers(empty_model(model_dir), candidate, sorted(io.load_tensors(trained_file)), record.softmask)
    with io.atomic_dir(out_dir) as tmp:
        folder = Path(tmp)
        io.write_yaml(folder / "axolotl.yaml", {"unfrozen_parameters": export.axolotl_unfrozen})
        if export.peft_lora:
            io.write_json(folder / "peft_lora_config.json", export.peft_lora)
        if export.torchtune_names:
            io.write_json(folder / "torchtune_params.json", export.torchtune_names)
        io.write_json(folder / "hf_params.json", export.parameter_names)
        io.write_text(folder / "README.md", export_readme(export))
    log.info("region of %s exported to %s (%d tensors)", candidate, out_dir, len(export.parameter_names))


def export_readme(export) -> str:
    files = [
        "- `axolotl.yaml`: `unfrozen_parameters` for an axolotl config (full fine-tuning of these tensors only).",
        "- `peft_lora_config.json`: `LoraConfig(**json.load(...))`: LoRA on the region's matrices only."
        if export.peft_lora else "",
        "- `torchtune_params.json`: the same tensors under torchtune's Llama names (set `requires_grad` on these)."
        if export.torchtune_names else "",
        "- `hf_params.json`: the tensors as Hugging Face names them (`model.named_parameters()`).",
    ]
    notes = [f"- {note}" for note in export.notes]
    return "\n".join([f"# Region of {export.candidate}, for other trainers", "", *filter(None, files), "",
                      "## What these cannot express", "", *notes, ""])
