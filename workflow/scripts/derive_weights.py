from cofitune.infra.logs import logged_to
from cofitune.stages.train import derive_weights

with logged_to(snakemake.log[0]):
    derive_weights(
        model_dir=snakemake.input.model, parent_file=snakemake.input.parent, parent_metrics=snakemake.input.parent_metrics,
        candidate_spec=snakemake.params.candidate, trained_out=snakemake.output.trained, metrics_out=snakemake.output.metrics,
    )
