# Fine level: importance of heads and neurons per source, their element-wise max, and the
# table and heatmaps a person reads.
rule estimate_importance:
    input:
        model=MODEL_DIR,
        data=lambda wc: local_files(IMPORTANCE_SOURCES[wc.source]),
        accelerate=accelerate_config(),
    output:
        importance_source("{source}"),
    params:
        files=lambda wc: json.dumps(IMPORTANCE_SOURCES[wc.source]),
        settings=json.dumps(config["importance"]),
        seed=config["seed"],
        sharding=config["training"]["sharding"],
        launch=launcher(),
        code=code_hash("cofitune.stages.importance:main"),
    threads: all_cores()
    resources:
        gpu=config["gpus"]["importance"],
    log:
        log_file("importance/{source}"),
    benchmark:
        benchmark_file("importance/{source}")
    conda:
        "../../envs/cofitune.yaml"
    shell:
        keeping_attempt_log(
            "ACCELERATE_CFG={input.accelerate:q}; OMP_NUM_THREADS={threads} {params.launch} -m cofitune.stages.importance"
            " --model-dir {input.model:q} --files {params.files:q} --settings {params.settings:q} --seed {params.seed}"
            " --sharding {params.sharding:q} --out {output:q} > {log:q} 2>&1"
        )


rule combine_importance:
    input:
        [importance_source(s) for s in IMPORTANCE_SOURCES],
    output:
        COMBINED_IMPORTANCE,
    params:
        code=code_hash("cofitune.stages.importance:combine_importance"),
    log:
        log_file("combine_importance"),
    benchmark:
        benchmark_file("combine_importance")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/combine_importance.py"


rule tabulate_importance:
    input:
        sources=[importance_source(s) for s in IMPORTANCE_SOURCES],
        combined=COMBINED_IMPORTANCE,
    output:
        table=IMPORTANCE_TABLE,
        plots=report(importance_plots(), caption="../report/importance.rst", category="Importance"),
    params:
        sources=list(IMPORTANCE_SOURCES),
        code=code_hash("cofitune.stages.importance:tabulate_importance"),
    log:
        log_file("tabulate_importance"),
    benchmark:
        benchmark_file("tabulate_importance")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/tabulate_importance.py"
