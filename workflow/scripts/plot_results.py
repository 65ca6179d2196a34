from cofitune.infra.logs import logged_to
from cofitune.stages.tables import plot_results

with logged_to(snakemake.log[0]):
    plot_results(summary_file=snakemake.input.summary, train_metrics_files=snakemake.input.train, rank_format=snakemake.params.rank_format,
                 tradeoff_out=snakemake.output.tradeoff, loss_out=snakemake.output.loss)
