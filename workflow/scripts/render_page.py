from cofitune.logs import logged_to
from cofitune.stages.report import render_page

with logged_to(snakemake.log[0]):
    render_page(snakemake.input[0], snakemake.params.title, snakemake.output[0])
