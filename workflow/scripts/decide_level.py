from cofitune.coarse.settings import SearchSection
from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.logs import logged_to
from cofitune.stages.search import decide_level

with logged_to(snakemake.log[0]):
    decide_level(
        level=int(snakemake.wildcards.level), search=SearchSection.from_settings(snakemake.params.search), node_ids=snakemake.params.contenders,
        metrics_files=snakemake.input.metrics, evaluation=EvaluationSection.from_settings(snakemake.params.evaluation), out_file=snakemake.output[0],
        samples_files=snakemake.input.samples, train_files=snakemake.input.train,
        runs=snakemake.params.runs,
    )
