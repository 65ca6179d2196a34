from cofitune.logs import logged_to
from cofitune.stages.search import decide_level

with logged_to(snakemake.log[0]):
    decide_level(
        int(snakemake.wildcards.level), snakemake.params.mode, snakemake.params.contenders, snakemake.input.metrics,
        snakemake.params.evaluation, snakemake.output[0], snakemake.input.samples, snakemake.input.train,
        snakemake.params.tie_band, snakemake.params.seed, snakemake.params.runs,
    )
