"""Two-process DDP (gloo, CPU) gives the same masked update as one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from cofitune.infra import io
from tests.integration.ddp_worker import run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_two_process_ddp_equals_one_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(REPO / "tests" / "integration" / "ddp_worker.py"), str(tmp_path / "ddp.safetensors")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run(str(tmp_path / "single.safetensors"), micro_batch_size=8, accelerator=Accelerator(cpu=True))
    ddp, single = io.load_tensors(tmp_path / "ddp.safetensors"), io.load_tensors(tmp_path / "single.safetensors")
    assert ddp.keys() == single.keys()
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-5, atol=1e-6, msg=name)
