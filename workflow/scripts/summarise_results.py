from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.logs import logged_to
from cofitune.stages.tables import summarise

with logged_to(snakemake.log[0]):
    summarise(
        candidates_file=snakemake.input.candidates, samples_file=snakemake.input.samples, level_files=snakemake.input.levels,
        final_id=snakemake.params.final, evaluation=EvaluationSection.from_settings(snakemake.params.evaluation), seed=snakemake.params.seed,
        summary_out=snakemake.output.summary, markdown_out=snakemake.output.markdown, trace_out=snakemake.output.trace,
        claims_out=snakemake.output.claims, fixed_rules=snakemake.params.fixed_rules,
    )
