# Coarse level: the tree search as a data-dependent DAG. One checkpoint rule with a {level}
# wildcard writes each level's decision; level k's inputs (its nodes' evaluations) are computed
# from the decision of level k - 1, so `snakemake -n` always shows the current frontier, and a
# rerun after a kill retrains nothing that finished.
checkpoint decide_level:
    input:
        # the search decides on the select items only
        metrics=lambda wc: [eval_metrics(r, SELECT) for runs in level_runs(wc.level).values() for r in runs],
        samples=lambda wc: [eval_samples(r, SELECT) for runs in level_runs(wc.level).values() for r in runs],
        train=lambda wc: [train_metrics(n.id) for n in level_contenders(int(wc.level))],
    output:
        level_decision("{level}"),
    params:
        search=SearchSection.from_config(config).settings(),
        contenders=lambda wc: [n.id for n in level_contenders(int(wc.level))],
        runs=lambda wc: level_runs(wc.level),
        evaluation=EVALUATION,
        code=code_hash("cofitune.stages.search:decide_level"),
    log:
        log_file("search/level_{level}"),
    benchmark:
        benchmark_file("search/level_{level}")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/decide_level.py"
