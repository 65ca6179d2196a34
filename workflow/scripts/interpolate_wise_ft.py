from cofitune.logs import logged_to
from cofitune.stages.train import interpolate_wise_ft

with logged_to(snakemake.log[0]):
    interpolate_wise_ft(
        snakemake.input.model, snakemake.input.full_sft, snakemake.params.candidate, snakemake.output.trained,
        snakemake.output.metrics,
    )
