import torch

from cofitune.logs import logged_to
from cofitune.stages.evaluate import evaluate_candidate

torch.set_num_threads(snakemake.threads)
with logged_to(snakemake.log[0]):
    evaluate_candidate(
        snakemake.input.model, snakemake.input.get("trained"), snakemake.input.tasks, snakemake.params.evaluation,
        snakemake.wildcards.candidate, snakemake.output.metrics, snakemake.output.samples, snakemake.input.kl_data,
    )
