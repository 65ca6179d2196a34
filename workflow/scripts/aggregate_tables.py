from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.logs import logged_to
from cofitune.stages.tables import aggregate

with logged_to(snakemake.log[0]):
    aggregate(
        metrics_files=snakemake.input.metrics, train_metrics_files=dict(zip(snakemake.params.trained, snakemake.input.train, strict=True)),
        samples_files=snakemake.input.samples, evaluation=EvaluationSection.from_settings(snakemake.params.evaluation), config=snakemake.params.config,
        candidates_out=snakemake.output.candidates, samples_out=snakemake.output.samples,
    )
