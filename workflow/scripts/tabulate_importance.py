from pathlib import Path

from cofitune.logs import logged_to
from cofitune.stages.importance import tabulate_importance

with logged_to(snakemake.log[0]):
    plot_dir = Path(snakemake.output.plots[0]).parent
    tabulate_importance(snakemake.params.sources, snakemake.input.sources, snakemake.input.combined, snakemake.output.table, plot_dir)
