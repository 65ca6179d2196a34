from cofitune.logs import logged_to
from cofitune.stages.model import prepare_model

with logged_to(snakemake.log[0]):
    prepare_model(snakemake.params.model, snakemake.output[0], snakemake.params.seed)
