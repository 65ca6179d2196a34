from cofitune.logs import logged_to
from cofitune.stages.data import prepare_data

with logged_to(snakemake.log[0]):
    prepare_data(
        snakemake.input.model, snakemake.input.train, snakemake.params.max_length, snakemake.params.loss_on,
        snakemake.output.data, snakemake.output.report, snakemake.params.truncation, snakemake.params.max_dropped_share,
    )
