from cofitune.infra.logs import logged_to
from cofitune.stages.deliver import write_final_model

with logged_to(snakemake.log[0]):
    write_final_model(
        model_dir=snakemake.input.model, trained_file=snakemake.input.trained, train_metrics=snakemake.input.train_metrics,
        summary_file=snakemake.input.summary, candidate=snakemake.params.candidate, config=snakemake.params.config,
        importance_sources=snakemake.params.importance_sources, out_dir=snakemake.output[0], claims_file=snakemake.input.claims,
        region_source=snakemake.params.region_source,
    )
