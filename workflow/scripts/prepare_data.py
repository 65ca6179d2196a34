from cofitune.infra.logs import logged_to
from cofitune.stages.data import prepare_data

with logged_to(snakemake.log[0]):
    prepare_data(
        model_dir=snakemake.input.model, train_files=snakemake.params.train, max_length=snakemake.params.max_length,
        loss_on=snakemake.params.loss_on, out_dir=snakemake.output.data, report_file=snakemake.output.report,
        truncation=snakemake.params.truncation, max_dropped_share=snakemake.params.max_dropped_share,
    )
