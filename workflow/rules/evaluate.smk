# lm-eval speciality and versatility benchmarks of one candidate (the base model is evaluated
# once as the candidate "base" and reused by every comparison).
rule evaluate_candidate:
    input:
        unpack(trained_tensors),
        model=MODEL_DIR,
        tasks=TASKS_DIR,
        kl_data=KL_DATA,
    output:
        metrics=eval_metrics("{candidate}"),
        samples=eval_samples("{candidate}"),
    params:
        evaluation=EVALUATION,
        code=code_hash("cofitune.stages.evaluate:evaluate_candidate"),
    threads: all_cores()
    resources:
        gpu=config["gpus"]["evaluate"],
    log:
        log_file("evaluate/{candidate}"),
    benchmark:
        benchmark_file("evaluate/{candidate}")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/evaluate_candidate.py"
