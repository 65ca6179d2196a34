from cofitune.infra.logs import logged_to
from cofitune.stages.deliver import export_region

with logged_to(snakemake.log[0]):
    export_region(model_dir=snakemake.input.model, trained_file=snakemake.input.trained, train_metrics=snakemake.input.train_metrics,
                  candidate=snakemake.params.candidate, out_dir=snakemake.output[0])
