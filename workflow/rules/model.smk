rule prepare_model:
    output:
        directory(MODEL_DIR),
    params:
        model=config["model"],
        seed=config["seed"],
        code=code_hash("cofitune.stages.model:prepare_model"),
    log:
        log_file("prepare_model"),
    benchmark:
        benchmark_file("prepare_model")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/prepare_model.py"
