"""train_candidate with training.report_to: one TensorBoard run per candidate beside its outputs, with the
candidate as metadata; without trackers nothing more is written; a missing tracker stops it before training."""

from __future__ import annotations

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cofitune.configuration.sections import TrainingSection
from cofitune.infra import io
from cofitune.infra.records import TrainRecord
from cofitune.stages.train import train_candidate
from cofitune.training import tracking
from tests.conftest import prepare_tiny_run, train_outputs

TRAINING = {"learning_rate": 1e-3, "max_steps": 3, "micro_batch_size": 4, "precision": "fp32", "log_every_steps": 1}
SPEC = {"layers": "q2", "modules": "ffn"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = prepare_tiny_run(tmp_path_factory.mktemp("prepared"))
    return root


def _train(prepared, folder, report_to):
    train_candidate(model_dir=prepared / "model", data_dir=prepared / "data", candidate_spec=SPEC,
                    training=TrainingSection.from_config({**TRAINING, "report_to": report_to}, seed=3), **train_outputs(folder))
    return io.load_tensors(folder / "trained.safetensors"), TrainRecord.read(folder / "train_metrics.json")


def test_tensorboard_curves_and_metadata_of_one_candidate_are_read_back(prepared, tmp_path):
    tracked, record = _train(prepared, tmp_path / "tracked", ["tensorboard"])
    run = tmp_path / "tracked" / "tracking" / tracking.PROJECT
    events = EventAccumulator(str(run))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s",
                                             "train/target_tokens"}
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in record.history], rel=1e-6)
    (hparams,) = run.glob("*/hparams.yml")
    meta = yaml.safe_load(hparams.read_text())
    assert meta["candidate"] == record.candidate == "0.25-0.5_ffn" and meta["layer_range"] == "0.25-0.5"
    assert meta["module_set"] == "ffn" and meta["layer_indices"] == "1" and meta["method"] == "region" and meta["seed"] == 3
    assert len(meta["fingerprint"]) == 16

    plain, plain_record = _train(prepared, tmp_path / "plain", [])
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["train_metrics.json", "trained.safetensors"]
    for name, tensor in plain.items():  # tracking leaves the training as it was
        assert torch.equal(tensor, tracked[name]), name
    assert plain_record.history == record.history


def test_a_tracker_that_is_not_installed_stops_the_job_before_training(prepared, tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "_installed", lambda module: module != "wandb")
    with pytest.raises(ValueError, match=r"training\.report_to names wandb, which is not installed.*`pip install wandb`"):
        _train(prepared, tmp_path, ["tensorboard", "wandb"])
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_the_command_lines_report_to_replaces_the_sections(prepared, tmp_path, monkeypatch):
    """The workflow passes the trackers in $COFITUNE_REPORT_TO, outside the training section (which would rerun the jobs)."""
    import json

    from cofitune.stages import train

    monkeypatch.setattr(train, "setup_logging", lambda: None)  # leave the test session's logging as it is
    monkeypatch.setenv("COFITUNE_REPORT_TO", '["tensorboard"]')  # how the workflow passes them (common.smk)
    outputs = train_outputs(tmp_path)
    assert train.main(["--model-dir", str(prepared / "model"), "--data-dir", str(prepared / "data"), "--candidate", json.dumps(SPEC),
                 "--training", json.dumps({**TRAINING, "max_steps": 1, "report_to": []}), "--seed", "3",
                 *(arg for key, path in outputs.items() for arg in (f"--{key.replace('_', '-')}", str(path)))]) == 0
    assert list((tmp_path / "tracking" / tracking.PROJECT).glob("events.out.tfevents.*"))
