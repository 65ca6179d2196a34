"""The importance file: one owner of its keys, a round trip, and what it refuses."""

from __future__ import annotations

import pytest
import torch

from cofitune.fine.importance_file import Importance, read_importance, write_importance
from cofitune.infra import io


def test_a_source_file_round_trips_and_a_combined_file_holds_norm_only(tmp_path):
    source = Importance(norm={"head": torch.rand(2, 4)}, raw={"head": torch.rand(2, 4) * 9}, split_half={"head": torch.tensor([0.5, 0.7])})
    write_importance(tmp_path / "source.safetensors", source, metadata={"examples": "8"})
    back = read_importance(tmp_path / "source.safetensors")
    assert set(io.load_tensors(tmp_path / "source.safetensors")) == {"norm.head", "raw.head", "split_half.head"}
    for part in ("norm", "raw", "split_half"):
        assert torch.equal(getattr(back, part)["head"], getattr(source, part)["head"])
    write_importance(tmp_path / "combined.safetensors", Importance(norm={"output": torch.rand(2, 3)}))
    combined = read_importance(tmp_path / "combined.safetensors")
    assert set(combined.norm) == {"output"} and not combined.raw and not combined.split_half


def test_a_file_that_is_not_an_importance_file_is_named(tmp_path):
    io.save_tensors(tmp_path / "trained.safetensors", {"model.layers.0.mlp.up_proj.weight": torch.zeros(2, 2)})
    with pytest.raises(io.DataError, match=r"trained.safetensors: unknown key 'model.layers.0.mlp.up_proj.weight': not an importance file"):
        read_importance(tmp_path / "trained.safetensors")


def test_non_finite_normalised_importance_names_the_layers(tmp_path):
    values = torch.rand(3, 4)
    values[1, 2] = float("inf")
    write_importance(tmp_path / "bad.safetensors", Importance(norm={"intermediate": values}))
    with pytest.raises(io.DataError, match=r"1 NaN/inf values of intermediate importance \(layers \[1\]\)"):
        read_importance(tmp_path / "bad.safetensors")
