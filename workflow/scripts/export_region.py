from cofitune.logs import logged_to
from cofitune.stages.deliver import export_region

with logged_to(snakemake.log[0]):
    export_region(snakemake.input.model, snakemake.input.trained, snakemake.input.train_metrics,
                  snakemake.params.candidate, snakemake.output[0])
