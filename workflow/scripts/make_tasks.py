from cofitune.logs import logged_to
from cofitune.stages.data import make_tasks

with logged_to(snakemake.log[0]):
    make_tasks(snakemake.input.model, snakemake.params.speciality, snakemake.params.versatility, snakemake.output[0])
