"""Live curves through accelerate's trackers: TensorBoard's events read back match the loop's records,
also across a resume; a tracker that is not installed is refused naming the config key."""

from __future__ import annotations

import copy

import pytest
import yaml
from accelerate import Accelerator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cofitune.models import regions
from cofitune.training import tracking
from cofitune.training.loop import TrainSettings, train

SETTINGS = TrainSettings(learning_rate=1e-3, max_steps=3, micro_batch_size=4, save_every_steps=2, log_every_steps=1)
TAGS = {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s", "train/target_tokens"}


def _model(tiny_llama):
    model = copy.deepcopy(tiny_llama[0])
    regions.freeze_all_but(model, regions.select_parameters(model, (0.25, 0.5), "ffn"))
    return model


def _tracked_train(tiny_llama, rows, folder, settings=SETTINGS, **kwargs):
    accelerator = Accelerator(cpu=True, log_with=["tensorboard"], project_dir=str(folder))
    with tracking.tracked_run(accelerator, ["tensorboard"], "0.25-0.5_ffn", {"candidate": "0.25-0.5_ffn", "layers": [1]}) as log_step:
        return train(_model(tiny_llama), rows, settings, accelerator, pad_id=0, log_step=log_step, **kwargs)


def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_hold_each_steps_record(tiny_llama, tiny_rows, tmp_path):
    result = _tracked_train(tiny_llama, tiny_rows, tmp_path)
    scalars = _scalars(tmp_path / tracking.PROJECT)
    assert set(scalars) == TAGS
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3]
    for tag, key in (("train/loss", "loss"), ("train/learning_rate", "lr"), ("train/grad_norm", "grad_norm"),
                     ("train/target_tokens", "target_tokens")):
        assert [v for _, v in scalars[tag]] == pytest.approx([r[key] for r in result.history], rel=1e-6), tag  # float32 in the file
    assert all(v > 0 for _, v in scalars["train/tokens_per_s"])
    (hparams,) = (tmp_path / tracking.PROJECT).glob("*/hparams.yml")  # the run's metadata, scalars only
    assert yaml.safe_load(hparams.read_text()) == {"candidate": "0.25-0.5_ffn", "layers": "1"}


def test_a_resumed_training_appends_and_tensorboard_keeps_one_value_per_step(tiny_llama, tiny_rows, tmp_path):
    settings = TrainSettings(learning_rate=1e-3, max_steps=4, micro_batch_size=4, save_every_steps=2, log_every_steps=1)

    class Killed(Exception):
        pass

    def kill_at_three(step, _record):  # after step 3 was logged; the checkpoint holds step 2
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        _tracked_train(tiny_llama, tiny_rows, tmp_path / "run", settings, checkpoint_dir=tmp_path / "ckpt", fingerprint="x",
                       on_step=kill_at_three)
    resumed = _tracked_train(tiny_llama, tiny_rows, tmp_path / "run", settings, checkpoint_dir=tmp_path / "ckpt", fingerprint="x")
    assert resumed.resumed_from_step == 2
    loss = _scalars(tmp_path / "run" / tracking.PROJECT)["train/loss"]
    assert [step for step, _ in loss] == [1, 2, 3, 4]  # step 3 of the killed attempt was replaced
    assert [v for _, v in loss] == pytest.approx([r["loss"] for r in resumed.history], rel=1e-6)


def test_a_fresh_start_removes_the_curves_of_an_earlier_attempt(tiny_llama, tiny_rows, tmp_path):
    _tracked_train(tiny_llama, tiny_rows, tmp_path)
    _tracked_train(tiny_llama, tiny_rows, tmp_path)
    assert len(list((tmp_path / tracking.PROJECT).glob("events.out.tfevents.*"))) == 1


def test_no_trackers_start_nothing(tmp_path):
    with tracking.tracked_run(Accelerator(cpu=True, project_dir=str(tmp_path)), [], "c", {}) as log_step:
        assert log_step is None
    assert not any(tmp_path.iterdir())


def test_a_tracker_that_is_not_installed_is_refused_naming_the_key_and_the_fix(monkeypatch):
    monkeypatch.setattr(tracking, "_installed", lambda module: module != "mlflow")
    assert tracking.check_report_to(["tensorboard", "tensorboard"]) == ("tensorboard",)
    with pytest.raises(ValueError, match=r"training\.report_to names mlflow, which is not installed.*`pip install mlflow`"):
        tracking.check_report_to(["tensorboard", "mlflow"])
    with pytest.raises(ValueError, match=r"training\.report_to: unknown tracker\(s\) 'comet'"):
        tracking.check_report_to(["comet"])


def test_config_values_become_scalars():
    assert tracking.scalar_config({"a": [1, 2], "b": None, "c": 0.5, "d": "x", "e": True}) == {
        "a": "1,2", "b": "", "c": 0.5, "d": "x", "e": True}
