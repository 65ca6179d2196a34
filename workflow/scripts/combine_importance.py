from cofitune.infra.logs import logged_to
from cofitune.stages.importance import combine_importance

with logged_to(snakemake.log[0]):
    combine_importance(source_files=snakemake.input, out_file=snakemake.output[0])
