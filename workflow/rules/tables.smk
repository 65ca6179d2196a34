rule aggregate_tables:
    input:
        model=MODEL_DIR,
        metrics=expand(RESULTS / "eval" / "{candidate}" / "metrics.json", candidate=CANDIDATES),
        samples=expand(RESULTS / "eval" / "{candidate}" / "samples.parquet", candidate=CANDIDATES),
        train=expand(RESULTS / "train" / "{candidate}" / "train_metrics.json", candidate=TRAINED),
    output:
        candidates=TABLES[0],
        samples=TABLES[1],
    params:
        candidates=CANDIDATES,
        trained=TRAINED,
        evaluation=EVALUATION,
        config=config,
        code=code_hash("aggregate"),
    log:
        log_file("aggregate_tables"),
    benchmark:
        benchmark_file("aggregate_tables")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/aggregate_tables.py"
