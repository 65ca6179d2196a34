from cofitune.infra.logs import logged_to
from cofitune.stages.data import make_tasks

with logged_to(snakemake.log[0]):
    make_tasks(model_dir=snakemake.input.model, speciality=snakemake.params.speciality,
               local_versatility=snakemake.params.versatility, out_dir=snakemake.output[0])
