"""The final model's card (`README.md`, Hugging Face's format: YAML front matter, then Markdown for a
person); `region.json`, its machine-readable twin, is `cofitune.handoff.region_file`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cofitune.evidence.markdown import markdown_report
from cofitune.infra.records import TrainRecord


@dataclass(frozen=True)
class FinalModel:
    """Everything the card says, gathered by the stage from the run's own records."""

    candidate: str
    base_model: str  # as configured: a hub id, a folder or builtin:<name>
    base_revision: str | None
    dtype: str  # what the saved weights are stored in (the base model's dtype)
    train: TrainRecord
    trained_names: Sequence[str]  # the region's tensors, as named in the saved model
    training: Mapping[str, Any]  # the config's training section
    train_files: Sequence[str]
    importance_sources: Mapping[str, Sequence[str]]
    summary: pa.Table  # the summary rows to show (this model first, then references)
    config_hash: str
    versions: Mapping[str, str]
    claims: pa.Table | None = None  # the run's claims with their intervals (`cofitune.evidence.claims`)
    model_type: str = ""  # the base model's architecture family (config.model_type)
    n_layers: int = 0  # its decoder layers
    region_source: str = "searched by this run"  # or where a reused region came from (search.reuse)


def render_model_card(final: FinalModel) -> str:
    return "\n".join([_front_matter(final), *_sections(final)])


def _front_matter(final: FinalModel) -> str:
    lines = ["---", "library_name: transformers", "tags: [cofitune, selective-fine-tuning]"]
    if not final.base_model.startswith("builtin:"):
        lines.append(f"base_model: {final.base_model}")
    return "\n".join([*lines, "---", ""])


_MASK_TARGET = {"update": "optimizer step (a per-unit learning rate)", "gradient": "gradient (before AdamW, as the reference code)"}


def _sections(final: FinalModel) -> list[str]:
    record, training = final.train, final.training
    share = record.trainable_params / record.total_params if record.total_params else 0.0
    mask = (
        f"on: each head's or neuron's {_MASK_TARGET.get(record.softmask_apply, 'update')} is scaled by 1 - its importance "
        f"({', '.join(record.softmask_parts)}), "
        f"importance estimated on {_sources(final.importance_sources)}"
        if record.softmask else "off: every entry of the region's tensors trained alike"
    )
    rounding = "" if final.dtype == "float32" else (
        f" Training kept fp32 master weights; they are stored here in {final.dtype}, the base model's dtype."
    )
    return [
        f"# {final.candidate}: CoFiTune fine-tune of {final.base_model}",
        "",
        "Fine-tuned with cofitune (CoFiTune, ACL 2024): only a region of the "
        "model was trained, chosen by a tree search for the best trade-off between the speciality and the "
        "model's general abilities (versatility)" + ("." if final.region_source == "searched by this run"
                                                      else ", run on another model of the same family (below)."),
        "",
        "## Region",
        f"- chosen: {final.region_source}",
        f"- layers: `{record.layer_range}` of the depth, i.e. decoder layers {_indices(record.layer_indices)}",
        f"- modules: `{record.module_set}`; {len(final.trained_names)} tensors, {record.trainable_params:,} parameters "
        f"({share:.1%} of {record.total_params:,})",
        f"- soft-mask (fine level): {mask}",
        "- the exact tensor names are in `region.json`",
        "",
        "## Data and training",
        f"- speciality data: {', '.join(f'`{p}`' for p in final.train_files)}",
        f"- {record.steps} steps, learning rate {training['learning_rate']}, micro-batch {training['micro_batch_size']} x "
        f"{training['gradient_accumulation_steps']} accumulation x {record.processes} processes, "
        f"max length {training['max_length']}, loss on {training['loss_on']}, precision {record.precision}, "
        f"sharding {record.sharding}, seed {record.seed}",
        f"- final training loss: {_number(record.final_loss)}",
        "",
        "## Evaluation",
        "Spe. = speciality score, Ver. = versatility (general ability), Uni. = Spe. + Ver.; brackets are 95% "
        "bootstrap intervals over the evaluation items (and training seeds, where a model has several). Every number "
        "here is measured on the confirm items of each task: items that none of the search's decisions saw (the region "
        "was chosen on other items of the same tasks, the select items), so they carry no selection optimism.",
        "",
        markdown_report(final.summary, final.claims),
        "",
        "## Use",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\")",
        "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")",
        "```",
        f"Weights: safetensors in {final.dtype}.{rounding}",
        "",
        "## Provenance",
        f"- config hash `{final.config_hash}`; base revision `{final.base_revision or 'as configured'}`",
        f"- {', '.join(f'{k} {v}' for k, v in sorted(final.versions.items()))}",
        "",
    ]


def _indices(indices: Sequence[int]) -> str:
    if len(indices) > 1 and list(indices) == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}-{indices[-1]}"
    return ", ".join(map(str, indices))


def _sources(sources: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{name} ({', '.join(f'`{p}`' for p in paths)})" for name, paths in sources.items())


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
