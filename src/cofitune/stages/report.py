"""Rules `draw_search_tree` and `render_page`: what Snakemake's report shows beyond the plots."""

from __future__ import annotations

from pathlib import Path

from cofitune.infra import io


def draw_search_tree(*, trace_file: str | Path, summary_file: str | Path, out_file: str | Path) -> None:
    from cofitune.evidence.plots import search_tree

    final = next((row for row in io.read_parquet(summary_file).to_pylist() if row["cofitune"]), None)
    with io.atomic_path(out_file) as tmp:
        search_tree(io.read_parquet(trace_file).to_pylist(), final, tmp, fmt="svg")


def render_page(markdown_file: str | Path, title: str, out_file: str | Path) -> None:
    from cofitune.evidence.pages import markdown_page

    io.write_text(out_file, markdown_page(title, Path(markdown_file).read_text(encoding="utf-8")))
