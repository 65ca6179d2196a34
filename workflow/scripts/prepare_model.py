from cofitune.infra.logs import logged_to
from cofitune.stages.model import prepare_model

with logged_to(snakemake.log[0]):
    prepare_model(model_cfg=snakemake.params.model, out_dir=snakemake.output[0], seed=snakemake.params.seed)
