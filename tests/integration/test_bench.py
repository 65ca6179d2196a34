"""bench/scale.py runs (a GPU benchmark, here on CPU at a tiny shape). Its offloaded full-SFT path
needs a GPU (FSDP2's CPU offload moves device state to the host) and is not run here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_scale_benchmark_runs_every_configuration_on_a_tiny_shape(tmp_path):
    cmd = [sys.executable, str(REPO / "bench" / "scale.py"), "--shape", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1",
           "--micro-batch", "2", "--seq-len", "64", "--out-stem", str(tmp_path / "scale")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    rows = {r["config"]: r for r in pq.read_table(tmp_path / "scale.parquet").to_pylist()}
    assert set(rows) == {"full_sft", "ffn_q2", "ffn_q2_softmask", "lora_qv"}
    assert not rows["full_sft"]["offload"]  # a CPU has no device memory to run out of
    assert rows["ffn_q2"]["trainable_params"] == rows["ffn_q2_softmask"]["trainable_params"] < rows["full_sft"]["trainable_params"]
    assert all(r["tokens_per_second"] > 0 and r["peak_gib"] > 0 for r in rows.values())
    assert "soft-mask overhead" in (tmp_path / "scale.md").read_text()
