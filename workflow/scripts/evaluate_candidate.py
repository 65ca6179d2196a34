import torch

from cofitune.evaluation.settings import EvaluationSection
from cofitune.infra.logs import logged_to
from cofitune.stages.evaluate import evaluate_candidate

torch.set_num_threads(snakemake.threads)
with logged_to(snakemake.log[0]):
    evaluate_candidate(
        model_dir=snakemake.input.model, trained_file=snakemake.input.get("trained"), tasks_dir=snakemake.input.tasks,
        evaluation=EvaluationSection.from_settings(snakemake.params.evaluation), candidate_id=snakemake.wildcards.candidate, split=snakemake.wildcards.split,
        metrics_file=snakemake.output.metrics, samples_file=snakemake.output.samples, kl_files=snakemake.params.kl_files,
    )
