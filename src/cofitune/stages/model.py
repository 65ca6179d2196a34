"""Rules `prepare_model` (the base model, once) and the `cofitune merge` command."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofitune.infra import io
from cofitune.models import regions
from cofitune.models.modeling import ModelSource, load_source, save_model
from cofitune.stages.common import load_candidate_model

log = logging.getLogger(__name__)


def prepare_model(model_cfg: Mapping[str, Any], out_dir: str | Path, seed: int) -> None:
    """Materialise the configured base model once as a local safetensors folder."""
    model, tokenizer = load_source(ModelSource.from_config(dict(model_cfg)), seed=seed)
    regions.family_of(model)  # fail here, not in every training job, for an unsupported architecture
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)
    log.info("prepared %s (%s, %d parameters) in %s", model_cfg["name_or_path"], model.config.model_type, regions.count_parameters(model), out_dir)


def merge(model_dir: str | Path, trained_file: str | Path, out_dir: str | Path) -> None:
    """A full Hugging Face folder: the base model with the trained tensors written in."""
    model, tokenizer = load_candidate_model(model_dir, trained_file)
    with io.atomic_dir(out_dir) as tmp:
        save_model(model, tokenizer, tmp)
