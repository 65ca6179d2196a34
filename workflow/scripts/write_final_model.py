from cofitune.logs import logged_to
from cofitune.stages.deliver import write_final_model

with logged_to(snakemake.log[0]):
    write_final_model(
        snakemake.input.model, snakemake.input.trained, snakemake.input.train_metrics, snakemake.input.summary,
        snakemake.params.candidate, snakemake.params.config, snakemake.params.importance_sources, snakemake.output[0],
        snakemake.input.claims,
    )
