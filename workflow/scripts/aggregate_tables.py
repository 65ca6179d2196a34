from cofitune.cli import logged_to
from cofitune.stages import aggregate

with logged_to(snakemake.log[0]):
    aggregate(
        snakemake.params.candidates, snakemake.input.metrics, dict(zip(snakemake.params.trained, snakemake.input.train, strict=True)),
        snakemake.input.samples, snakemake.params.evaluation, snakemake.params.config, snakemake.input.model,
        snakemake.output.candidates, snakemake.output.samples,
    )
