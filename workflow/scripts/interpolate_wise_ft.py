from cofitune.infra.logs import logged_to
from cofitune.stages.train import interpolate_wise_ft

with logged_to(snakemake.log[0]):
    interpolate_wise_ft(
        model_dir=snakemake.input.model, full_sft_file=snakemake.input.full_sft,
        full_sft_metrics=snakemake.input.full_sft_metrics, candidate_spec=snakemake.params.candidate,
        trained_out=snakemake.output.trained, metrics_out=snakemake.output.metrics,
    )
