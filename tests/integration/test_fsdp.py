"""FSDP2 on CPU: two processes (torchrun, gloo) against one, through the stage the workflow launches.

Tolerance: the sharded run reduce-scatters gradients of two half-batches while the single process
sums one whole batch, so float32 sums are added in another order (differences ~1e-7 relative).
AdamW divides by sqrt(v), which magnifies such differences where a gradient is near zero: rtol
1e-4 / atol 1e-5 is a hundredth of what one step at lr 1e-3 moves a weight, so a wrong mask or a
missed shard (which moves whole rows by ~1e-3) cannot pass. Elements whose exact gradient is zero
(GPT-NeoX key biases) carry only rounding noise and are held to lr x steps (see below).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cofitune.configuration.sections import TrainingSection
from cofitune.data.sft import tokenize_examples
from cofitune.fine.masking import SoftmaskSection
from cofitune.infra import io
from cofitune.models.modeling import load_prepared
from cofitune.stages.model import prepare_model
from cofitune.stages.train import train_candidate
from tests.conftest import make_examples, train_outputs
from tests.integration.helpers import kill_tree

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TRAINING = {"learning_rate": 1e-3, "max_steps": 3, "micro_batch_size": 8, "precision": "fp32", "save_every_steps": 1}
SPECS = [
    {"id": "region_softmask", "layers": "h1", "modules": "mha+ffn", "softmask": True},  # softmask.apply: update
    {"id": "v_softmask", "layers": "all", "modules": "all", "softmask": True},
    {"id": "full_sft", "layers": "all", "modules": "all"},
    {"id": "l2", "method": "l2", "lam": 0.5},
    {"id": "hft", "method": "hft"},
    {"id": "last_1", "method": "last_n", "n": 1},
    {"id": "lora", "method": "lora", "rank": 4, "alpha": 8, "roles": ["q", "v"]},
]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]), "OMP_NUM_THREADS": "1"}


def _torchrun_command(*args: str, port: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
            str(REPO / "tests" / "integration" / "fsdp_worker.py"), *args]


def torchrun(*args: str, port: int) -> subprocess.CompletedProcess:
    return subprocess.run(_torchrun_command(*args, port=port), capture_output=True, text=True, env=_env(), cwd=REPO, timeout=900,
                          check=False)


def _zero_gradient_elements(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """GPT-NeoX's key biases (per head [q | k | v]): their exact gradient is zero (a key bias adds
    q.b_k to every logit of a softmax row), so their float gradient is rounding noise, which AdamW
    turns into steps of up to lr in either direction; they are compared against lr x steps only."""
    noise = torch.zeros_like(tensor, dtype=torch.bool)
    if name.endswith("attention.query_key_value.bias"):
        head_dim = tensor.numel() // (3 * 4)  # 4 heads
        noise.view(4, 3, head_dim)[:, 1] = True
    return noise


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-gpt-neox"])
def prepared(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    prepare_model({"name_or_path": f"builtin:{request.param}"}, root / "model", seed=0)
    _, tokenizer = load_prepared(root / "model")
    rows, _ = tokenize_examples(tokenizer, make_examples(32), max_length=64)
    io.write_dataset(root / "data", rows)
    generator = torch.Generator().manual_seed(1)
    io.save_tensors(root / "importance.safetensors", {f"norm.{t}": torch.rand(4, n, generator=generator) for t, n in
                                                     (("head", 4), ("intermediate", 128), ("output", 64))})
    return root


def test_two_sharded_processes_train_the_same_tensors_as_one(prepared, tmp_path):
    sharded = {**TRAINING, "micro_batch_size": 4, "sharding": "fsdp"}  # 2 processes x 4 = the single process's batch of 8
    proc = torchrun("train", str(prepared / "model"), str(prepared / "data"), str(prepared / "importance.safetensors"),
                    str(tmp_path / "fsdp"), json.dumps(SPECS), json.dumps(sharded), port=29541)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert proc.stderr.count("weights loaded by process 0 and sent out in shards (2 processes)") == 2 * (len(SPECS) - 1)  # not LoRA
    for spec in SPECS:
        kwargs = {"importance_file": prepared / "importance.safetensors",
                  "softmask": SoftmaskSection(("attention", "input_projection", "output_projection"))} if spec.get("softmask") else {}
        train_candidate(model_dir=prepared / "model", data_dir=prepared / "data", candidate_spec=spec,
                        training=TrainingSection.from_config(TRAINING, seed=3),
                        **train_outputs(tmp_path / "single" / spec["id"]), **kwargs)
        fsdp = io.load_tensors(tmp_path / "fsdp" / spec["id"] / "trained.safetensors")
        single = io.load_tensors(tmp_path / "single" / spec["id"] / "trained.safetensors")
        assert fsdp.keys() == single.keys() and fsdp
        for name in single:
            noise = _zero_gradient_elements(name, single[name])
            torch.testing.assert_close(fsdp[name][~noise], single[name][~noise], rtol=1e-4, atol=1e-5,
                                       msg=lambda m, n=name, c=spec["id"]: f"{c} {n}: {m}")
            lr_steps = TRAINING["learning_rate"] * TRAINING["max_steps"]
            assert not noise.any() or (fsdp[name][noise] - single[name][noise]).abs().max() <= lr_steps
        record = io.read_json(tmp_path / "fsdp" / spec["id"] / "train_metrics.json")
        assert record["sharding"] == "fsdp" and record["processes"] == 2
        assert record["softmask_apply"] == ("update" if spec.get("softmask") else "")
        assert record["trainable_params"] == io.read_json(tmp_path / "single" / spec["id"] / "train_metrics.json")["trainable_params"]


def test_each_process_masks_exactly_the_gradient_block_it_holds(tmp_path):
    proc = torchrun("mask-rows", str(tmp_path / "report.json"), port=29542)
    assert proc.returncode == 0, proc.stderr[-6000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"checked": 2 * 4 * 5, "world": 2}  # rows and columns x 4 layers x q, k, v, up, down


def test_scaled_steps_and_mofo_under_sharding_equal_one_process(tmp_path):
    """Bitwise the single process's steps: a choice per shard (each block's own top 15%) would differ."""
    proc = torchrun("scaled-steps", str(tmp_path / "report.json"), port=29547)
    assert proc.returncode == 0, proc.stderr[-6000:]
    per_case = 2 * 38  # 38 tensors, by rows and columns
    assert json.loads((tmp_path / "report.json").read_text()) == {"checked": {"mask": per_case, "mofo": per_case, "mofo+mask": per_case},
                                                                  "world": 2}


def test_importance_of_a_sharded_model_equals_one_process(tmp_path):
    from cofitune.stages.importance import estimate_importance

    prepare_model({"name_or_path": "builtin:tiny-llama"}, tmp_path / "model", seed=0)
    data = REPO / "data" / "importance" / "general.jsonl"
    proc = torchrun("importance", str(tmp_path / "model"), json.dumps([str(data)]), str(tmp_path / "fsdp.safetensors"), port=29543)
    assert proc.returncode == 0, proc.stderr[-6000:]
    settings = {"max_examples": 20, "batch_size": 4, "max_length": 64, "dropout": 0.05, "temperature": 0.1, "accumulate": "signed"}
    estimate_importance(model_dir=tmp_path / "model", files=[data], settings=settings, seed=3, out_file=tmp_path / "single.safetensors")
    fsdp, single = io.load_tensors(tmp_path / "fsdp.safetensors"), io.load_tensors(tmp_path / "single.safetensors")
    assert fsdp.keys() == single.keys() == {f"{k}.{t}" for k in ("raw", "norm", "split_half") for t in ("head", "intermediate", "output")}
    for name in (n for n in single if not n.startswith("split_half.")):  # 5 batches: 3 on one process, 2 (+1 of weight 0) on the other; sums in another order
        torch.testing.assert_close(fsdp[name], single[name], rtol=1e-4, atol=1e-6, msg=name)
    assert single["raw.head"].abs().sum() > 0


def test_a_killed_sharded_training_resumes_to_the_weights_of_an_uninterrupted_one(prepared, tmp_path):
    spec = [{"id": "region_softmask", "layers": "h1", "modules": "mha+ffn", "softmask": True}]
    training = {**TRAINING, "micro_batch_size": 4, "sharding": "fsdp", "max_steps": 40, "save_every_steps": 2}
    args = ["train", str(prepared / "model"), str(prepared / "data"), str(prepared / "importance.safetensors")]
    assert torchrun(*args, str(tmp_path / "whole"), json.dumps(spec), json.dumps(training), port=29544).returncode == 0
    state = tmp_path / "killed" / "region_softmask" / "checkpoint" / "state.json"
    process = subprocess.Popen(_torchrun_command(*args, str(tmp_path / "killed"), json.dumps(spec), json.dumps(training), port=29545),
                               env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        kill_tree(process.pid)
        process.wait()
    resumed_at = json.loads(state.read_text())["step"]
    assert not (tmp_path / "killed" / "region_softmask" / "trained.safetensors").exists() and 0 < resumed_at < 40
    proc = torchrun(*args, str(tmp_path / "killed"), json.dumps(spec), json.dumps(training), port=29546)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = io.read_json(tmp_path / "killed" / "region_softmask" / "train_metrics.json")
    assert record["resumed_from_step"] == resumed_at, [line for line in proc.stderr.splitlines() if "checkpoint" in line]
    whole = io.load_tensors(tmp_path / "whole" / "region_softmask" / "trained.safetensors")
    killed = io.load_tensors(tmp_path / "killed" / "region_softmask" / "trained.safetensors")
    for name in whole:  # same processes, same order of operations: the resumed run is bitwise the uninterrupted one
        assert torch.equal(whole[name], killed[name]), name


def test_a_sharded_workflow_with_two_processes_per_job_runs_through_the_rules(tmp_path):
    from tests.integration.helpers import describe_failure, scratch_workdir, snakemake, variant

    workdir = scratch_workdir(tmp_path / "run")
    config = variant(
        workdir, "sharded",
        search={"mode": "off"}, replicates={"seeds": 1, "models": ["final", "baselines"]},
        candidates=[{"layers": "h1", "modules": "mha+ffn", "softmask": True}],
        baselines={"full_sft": True, "v_softmask": False, "lora": {"enabled": False}, "wise_ft": {"alphas": [0.5]},
                   "l2": {"enabled": True, "lam": 0.01}, "hft": {"enabled": True}, "last_n": {"enabled": True, "n": 1},
                   "mofo": {"enabled": True}},
        training={"learning_rate": 1.0e-3, "max_steps": 4, "micro_batch_size": 4, "max_length": 128, "save_every_steps": 2,
                  "sharding": "fsdp", "launcher": "torchrun", "processes": 2},
        evaluation={"batch_size": 8, "select": 4, "confirm": 4, "formats": ["plain"], "rank_format": "plain"},
    )
    proc = snakemake(workdir, configfile=config)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    for candidate in ("0-0.5_mha+ffn_softmask", "full_sft", "l2", "hft", "last_1", "mofo_0.15"):
        record = io.read_json(workdir / "results" / "train" / candidate / "train_metrics.json")
        assert (record["sharding"], record["processes"]) == ("fsdp", 2), candidate
    assert (workdir / "results" / "logs" / "importance" / "sft.log").read_text().count("4 batches (2 on this process)") == 2
    assert (workdir / "results" / "tables" / "summary.parquet").is_file()


def test_the_paper_8b_preset_plans_a_full_run_on_one_sharded_node(tmp_path):
    from tests.integration.helpers import PRESETS, paths_outside, planned_gpus, planned_jobs, scratch_workdir, snakemake

    workdir = scratch_workdir(tmp_path)
    proc = snakemake(workdir, "-n", "-p", configfile=PRESETS / "paper-8b.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert paths_outside(proc.stdout, workdir) == []  # names stay inside results_dir
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_candidate"] == 3 + 6 + 1 and jobs["estimate_importance"] == 1  # + 1: the paper's fixed rule
    assert "torchrun --standalone --nproc_per_node 8 -m cofitune.stages.train" in proc.stdout
    multi_node = tmp_path / "multi_node.yaml"
    io.write_yaml(multi_node, {**io.read_yaml(PRESETS / "paper-8b.yaml"), "training": {
        **io.read_yaml(PRESETS / "paper-8b.yaml")["training"], "launcher": "torchrun-slurm"}})
    proc = snakemake(tmp_path, "-n", "-p", configfile=multi_node)
    assert 'srun --ntasks-per-node=1 torchrun --nnodes "$SLURM_NNODES" --nproc_per_node 8' in proc.stdout, proc.stdout[-2000:]
    gpus = planned_gpus(proc.stdout)  # from the preset's `gpus:`, as the SLURM executor will request them
    assert gpus["train_candidate"] == gpus["estimate_importance"] == {8} and gpus["evaluate_candidate"] == {1}, gpus
