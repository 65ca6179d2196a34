# lm-eval speciality and versatility benchmarks of one candidate on one item split: search nodes
# on select, the reported models on confirm (the base model once, as the candidate "base").
rule evaluate_candidate:
    input:
        unpack(trained_tensors),
        model=MODEL_DIR,
        tasks=TASKS_DIR,
        kl_data=local_files(KL_DATA),
    output:
        metrics=eval_metrics("{candidate}", "{split}"),
        samples=eval_samples("{candidate}", "{split}"),
    params:
        evaluation=EVALUATION,
        kl_files=KL_DATA,
        code=code_hash("cofitune.stages.evaluate:evaluate_candidate"),
    threads: all_cores()
    resources:
        gpu=config["gpus"]["evaluate"],
    log:
        log_file("evaluate/{split}/{candidate}"),
    benchmark:
        benchmark_file("evaluate/{split}/{candidate}")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/evaluate_candidate.py"
