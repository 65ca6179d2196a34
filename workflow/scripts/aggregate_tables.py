from cofitune.logs import logged_to
from cofitune.stages.tables import aggregate

with logged_to(snakemake.log[0]):
    aggregate(
        snakemake.params.candidates, snakemake.input.metrics, dict(zip(snakemake.params.trained, snakemake.input.train, strict=True)),
        snakemake.input.samples, snakemake.params.evaluation, snakemake.params.config,
        snakemake.output.candidates, snakemake.output.samples,
    )
