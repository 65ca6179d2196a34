rule aggregate_tables:
    input:
        metrics=lambda wc: [eval_metrics(c, split) for c, split in evaluations()],
        samples=lambda wc: [eval_samples(c, split) for c, split in evaluations()],
        train=lambda wc: [train_metrics(c) for c in trained_candidates()],
    output:
        candidates=TABLES[0],
        samples=TABLES[1],
    params:
        trained=trained_candidates,
        evaluation=EVALUATION,
        config=RECORDED_CONFIG,
        code=code_hash("cofitune.stages.tables:aggregate"),
    log:
        log_file("aggregate_tables"),
    benchmark:
        benchmark_file("aggregate_tables")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/aggregate_tables.py"


rule summarise_results:
    input:
        candidates=TABLES[0],
        samples=TABLES[1],
        levels=lambda wc: [checkpoints.decide_level.get(level=k).output[0] for k in SEARCH_LEVELS],
    output:
        summary=SUMMARY,
        markdown=report(SUMMARY_MD, caption="../report/summary.rst", category="Results"),
        trace=SEARCH_TRACE,
        claims=CLAIMS,
    params:
        final=lambda wc: final_candidate() if HAS_FINAL else None,
        fixed_rules=FIXED_RULE_IDS,
        evaluation=EVALUATION,
        seed=config["seed"],
        code=code_hash("cofitune.stages.tables:summarise"),
    log:
        log_file("summarise_results"),
    benchmark:
        benchmark_file("summarise_results")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/summarise_results.py"


rule plot_results:
    input:
        summary=SUMMARY,
        train=lambda wc: [train_metrics(c) for c in trained_candidates()],
    output:
        tradeoff=report(PLOTS[0], caption="../report/tradeoff.rst", category="Results"),
        loss=report(PLOTS[1], caption="../report/loss_curves.rst", category="Training"),
    params:
        rank_format=config["evaluation"]["rank_format"],
        code=code_hash("cofitune.stages.tables:plot_results"),
    log:
        log_file("plot_results"),
    benchmark:
        benchmark_file("plot_results")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/plot_results.py"
