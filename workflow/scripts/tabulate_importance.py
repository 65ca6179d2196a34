from pathlib import Path

from cofitune.infra.logs import logged_to
from cofitune.stages.importance import tabulate_importance

with logged_to(snakemake.log[0]):
    plot_dir = Path(snakemake.output.plots[0]).parent
    tabulate_importance(sources=snakemake.params.sources, source_files=snakemake.input.sources, combined_file=snakemake.input.combined,
                        table_out=snakemake.output.table, plot_dir=plot_dir)
