"""The command line: task-scores prints one row per task."""

from __future__ import annotations

import pyarrow as pa

from cofitune import cli
from cofitune.infra import io


def test_task_scores_command_prints_one_row_per_task(tmp_path, capsys):
    rows = [{"candidate": "base", "format": fmt, "task": "vk_world", "doc_id": i, "target": "a", "prediction": "a",
             "score": float(i < 3)} for fmt in ("plain", "chat") for i in range(4)]
    io.write_parquet(tmp_path / "samples.parquet", pa.Table.from_pylist(rows))
    assert cli.main(["task-scores", str(tmp_path / "samples.parquet")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| base | chat | vk_world | 75.0 [") and lines[2].endswith("| 4 |")
    assert len(lines) == 4
