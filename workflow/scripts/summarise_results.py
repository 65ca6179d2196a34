from cofitune.logs import logged_to
from cofitune.stages.tables import summarise

with logged_to(snakemake.log[0]):
    summarise(
        snakemake.input.candidates, snakemake.input.samples, snakemake.input.levels, snakemake.params.final,
        snakemake.params.evaluation, snakemake.params.seed, snakemake.output.summary, snakemake.output.markdown,
        snakemake.output.trace, snakemake.output.claims,
    )
