from pathlib import Path

from cofitune.infra.logs import logged_to
from cofitune.stages.report import render_page

with logged_to(snakemake.log[0]):
    source = Path(snakemake.input[0])  # the summary's Markdown, or the final model's folder
    render_page(markdown_file=source / "README.md" if source.is_dir() else source, title=snakemake.params.title, out_file=snakemake.output[0])
