from cofitune.logs import logged_to
from cofitune.stages.tables import plot_results

with logged_to(snakemake.log[0]):
    plot_results(snakemake.input.summary, snakemake.input.train, snakemake.params.rank_format, snakemake.output.tradeoff, snakemake.output.loss)
