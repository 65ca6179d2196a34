"""Stage train_candidate and derive_weights on a tiny model: outputs, records, what each method trained."""

from __future__ import annotations

import pytest
import torch

from cofitune.configuration.sections import TrainingSection
from cofitune.infra import io
from cofitune.infra.records import TrainRecord
from cofitune.models.modeling import load_prepared
from cofitune.stages.train import derive_weights, train_candidate
from tests.conftest import prepare_tiny_run, train_outputs

TRAINING = {"learning_rate": 1e-3, "max_steps": 2, "micro_batch_size": 4, "precision": "fp32", "save_every_steps": 1}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = prepare_tiny_run(tmp_path_factory.mktemp("prepared"))
    importance = {f"norm.{t}": torch.rand(4, n, generator=torch.Generator().manual_seed(1)) for t, n in
                  (("head", 4), ("intermediate", 128), ("output", 64))}
    io.save_tensors(root / "importance.safetensors", importance)
    return root


def _train(prepared, tmp_path, spec, **kwargs):
    train_candidate(model_dir=prepared / "model", data_dir=prepared / "data", candidate_spec=spec, training=TrainingSection.from_config(TRAINING, seed=3),
                    **train_outputs(tmp_path),
                    **kwargs)
    return io.load_tensors(tmp_path / "trained.safetensors"), TrainRecord.read(tmp_path / "train_metrics.json")


def test_a_soft_masked_region_writes_its_tensors_and_record(prepared, tmp_path):
    tensors, record = _train(prepared, tmp_path, {"layers": "q2", "modules": "ffn", "softmask": True},
                             importance_file=prepared / "importance.safetensors")
    assert set(tensors) == {"model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    assert record.candidate == "0.25-0.5_ffn_softmask" and record.method == "region+softmask" and record.layer_range == "0.25-0.5"
    assert record.softmask_tensors == 2 and record.softmask_parts == ["input_projection", "output_projection"]
    assert record.steps == 2 and len(record.history) == 2 and record.trainable_params == sum(t.numel() for t in tensors.values())
    assert not (tmp_path / "checkpoint").exists()  # a finished training removes its resume state


def test_keep_checkpoint_keeps_the_resume_state(prepared, tmp_path):
    train_candidate(model_dir=prepared / "model", data_dir=prepared / "data", candidate_spec={"layers": "q2", "modules": "ffn"},
                    training=TrainingSection.from_config({**TRAINING, "keep_checkpoint": True}, seed=3), **train_outputs(tmp_path))
    assert (tmp_path / "checkpoint" / "state.json").is_file() and (tmp_path / "trained.safetensors").is_file()


def test_non_finite_importance_is_refused_naming_the_file(prepared, tmp_path):
    values = torch.rand(4, 128)
    values[2, 5] = float("nan")
    bad = tmp_path / "importance.safetensors"
    io.save_tensors(bad, {"norm.head": torch.rand(4, 4), "norm.intermediate": values, "norm.output": torch.rand(4, 64)})
    with pytest.raises(io.DataError, match=rf"{bad}: 1 NaN/inf values of intermediate importance \(layers \[2\]\); delete this file"):
        _train(prepared, tmp_path / "out", {"layers": "q2", "modules": "ffn", "softmask": True}, importance_file=bad)


def test_a_soft_masked_candidate_without_importance_is_refused(prepared, tmp_path):
    with pytest.raises(ValueError, match="uses the soft-mask but no importance file"):
        _train(prepared, tmp_path, {"layers": "q2", "modules": "ffn", "softmask": True})


def test_lora_hands_back_merged_base_weights_and_wise_ft_interpolates(prepared, tmp_path):
    tensors, record = _train(prepared, tmp_path / "lora", {"method": "lora", "rank": 2, "alpha": 4, "roles": ["q"]})
    assert set(tensors) == {f"model.layers.{i}.self_attn.q_proj.weight" for i in range(4)} and record.method == "lora"
    full, _ = _train(prepared, tmp_path / "full", {"layers": "all", "modules": "all"})
    derive_weights(model_dir=prepared / "model", parent_file=tmp_path / "full" / "trained.safetensors",
                        parent_metrics=tmp_path / "full" / "train_metrics.json", candidate_spec={"method": "wise_ft", "alpha": 0.5},
                        trained_out=tmp_path / "wise.safetensors", metrics_out=tmp_path / "wise.json")
    assert TrainRecord.read(tmp_path / "wise.json").seed == 3  # the seed of the full SFT it interpolates
    base = dict(load_prepared(prepared / "model")[0].named_parameters())
    mixed = io.load_tensors(tmp_path / "wise.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(mixed[name], 0.5 * base[name].detach() + 0.5 * full[name])
    record = TrainRecord.read(tmp_path / "wise.json")
    assert record.method == "wise_ft" and record.steps == 0 and record.final_loss is None and record.layer_indices == [0, 1, 2, 3]
