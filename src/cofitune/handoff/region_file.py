"""`region.json`, the final model's region as scripts, other trainers and other runs read it; the
only module that writes or reads that file's fields.

A run with `search.reuse` trains the region another run decided ("search small, train big": searched
on a 0.5B sibling, trained on the 7B model). Regions are fractions of the depth, so they carry over
between depths; the region file's `model_type` must equal the new model's, since a module set names
matrices of one architecture family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cofitune.handoff.modelcard import FinalModel
from cofitune.infra import io
from cofitune.infra.io import DataError
from cofitune.models import regions

REGION_FILE = "region.json"
RECORD = "cofitune_region"
REGION_VERSION = 2  # 2: model_type, n_layers, region_source


def region_manifest(final: FinalModel) -> dict[str, Any]:
    """region.json: the trained region and the fine level's settings, for scripts and other trainers."""
    record = final.train
    return {
        "record": RECORD,
        "version": REGION_VERSION,
        "candidate": final.candidate,
        "base_model": final.base_model,
        "base_revision": final.base_revision,
        "model_type": final.model_type,
        "n_layers": final.n_layers,
        "layer_range": record.layer_range,
        "layer_indices": list(record.layer_indices),
        "module_set": record.module_set,
        "softmask": record.softmask,
        "softmask_parts": list(record.softmask_parts),
        "importance_sources": {k: list(v) for k, v in final.importance_sources.items()},
        "trainable_tensors": list(final.trained_names),
        "trainable_params": record.trainable_params,
        "total_params": record.total_params,
        "dtype": final.dtype,
        "seed": record.seed,
        "config_hash": final.config_hash,
        "region_source": final.region_source,
    }


@dataclass(frozen=True)
class ReusedRegion:
    """A region decided by another run, as this run trains it."""

    layer_range: tuple[float, float]
    module_set: str
    model_type: str
    source: str  # the region file read
    candidate: str  # its id there
    base_model: str  # the model it was searched on
    n_layers: int

    def describe(self) -> str:
        """Where the region came from, for the model card and region.json."""
        return (f"reused (search.reuse) from {self.source}: {self.candidate}, searched on {self.base_model} "
                f"({self.n_layers} layers, {self.model_type})")


def region_file_of(path: str | Path) -> Path:
    """`search.reuse` names a results folder (its final/region.json), a final model's folder, or the file."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "final" / REGION_FILE, path / REGION_FILE):
            if candidate.is_file():
                return candidate
        raise DataError(path, f"holds neither final/{REGION_FILE} (a results folder) nor {REGION_FILE} (a final model's folder)")
    if not path.is_file():
        raise DataError(path, "not found: give a results folder, a final model's folder or its region.json")
    return path


def read_region(path: str | Path) -> ReusedRegion:
    """The region of a region.json written by this version; anything else is a DataError naming the file."""
    file = region_file_of(path)
    data = io.read_json(file)  # a DataError naming the file and line when it is not JSON
    if not isinstance(data, Mapping) or data.get("record") != RECORD:
        raise DataError(file, f"not a cofitune region file (its 'record' is not {RECORD!r})")
    if data.get("version") != REGION_VERSION:
        raise DataError(file, f"region file version {data.get('version')!r}, this cofitune reads {REGION_VERSION} (version 1 "
                              "does not record the model's family): rerun that run's write_final_model to rewrite it")
    try:
        return ReusedRegion(regions.parse_layer_range(data["layer_range"]), str(data["module_set"]), str(data["model_type"]),
                            str(file), str(data["candidate"]), str(data["base_model"]), int(data["n_layers"]))
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(file, f"a broken region file ({type(err).__name__}: {err})") from err


def family_error(reused: ReusedRegion, model_type: str | None) -> str | None:
    """Why `reused` cannot be trained on a model of `model_type` (None: it can, or the type is not known yet)."""
    if model_type is None or model_type == reused.model_type:
        return None
    return (f"search.reuse: the region in {reused.source} was searched on a {reused.model_type!r} model ({reused.base_model}); "
            f"this run's model is {model_type!r}: a module set names matrices of one architecture family, reuse a region "
            "searched on a model of the same family")
