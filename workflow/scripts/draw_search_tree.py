from cofitune.logs import logged_to
from cofitune.stages.report import draw_search_tree

with logged_to(snakemake.log[0]):
    draw_search_tree(snakemake.input.trace, snakemake.input.summary, snakemake.output[0])
