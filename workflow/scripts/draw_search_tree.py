from cofitune.infra.logs import logged_to
from cofitune.stages.report import draw_search_tree

with logged_to(snakemake.log[0]):
    draw_search_tree(trace_file=snakemake.input.trace, summary_file=snakemake.input.summary, out_file=snakemake.output[0])
