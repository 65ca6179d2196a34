# Selective SFT of one candidate, launched by accelerate (one CPU process here; GPUs and DDP
# through the accelerate config). Only training settings are params: changing evaluation
# settings re-evaluates without retraining.
rule train_candidate:
    input:
        unpack(importance_input),
        unpack(budget_input),
        model=MODEL_DIR,
        data=TRAIN_DATA,
        accelerate=accelerate_config(),
    output:
        trained=trained_file("{candidate}"),
        metrics=train_metrics("{candidate}"),
    params:
        candidate=lambda wc: json.dumps(spec_for(wc.candidate)),
        training=lambda wc: json.dumps(training_for(wc.candidate)),
        module_sets=json.dumps(config["module_sets"]),
        softmask=lambda wc, input: (
            ["--importance", input.importance, "--softmask", json.dumps(SoftmaskSection.from_config(config["softmask"]).settings())]
            if "importance" in input.keys()
            else []
        ),
        budget=lambda wc, input: ["--budget-from", input.budget] if "budget" in input.keys() else [],
        seed=lambda wc: seed_for(wc.candidate),
        checkpoint=lambda wc: train_checkpoint(wc.candidate),
        launch=launcher(),
        code=code_hash("cofitune.stages.train:main"),
    threads: all_cores()
    resources:
        gpu=config["gpus"]["train"],
    log:
        log_file("train/{candidate}"),
    benchmark:
        benchmark_file("train/{candidate}")
    conda:
        "../../envs/cofitune.yaml"
    shell:
        keeping_attempt_log(
            "ACCELERATE_CFG={input.accelerate:q}; OMP_NUM_THREADS={threads} {params.launch} -m cofitune.stages.train"
            " --model-dir {input.model:q} --data-dir {input.data:q} --candidate {params.candidate:q}"
            " --training {params.training:q} --module-sets {params.module_sets:q} --seed {params.seed}"
            " --trained-out {output.trained:q} --metrics-out {output.metrics:q} --checkpoint-dir {params.checkpoint:q}"
            " {params.softmask:q} {params.budget:q} > {log:q} 2>&1"
        )


# A model its recipe derives from another's weights (Wise-FT: base and full SFT) needs no training.
ruleorder: derive_weights > train_candidate


rule derive_weights:
    input:
        model=MODEL_DIR,
        parent=lambda wc: trained_file(DERIVED[wc.candidate]),
        parent_metrics=lambda wc: train_metrics(DERIVED[wc.candidate]),
    output:
        trained=trained_file("{candidate}"),
        metrics=train_metrics("{candidate}"),
    wildcard_constraints:
        candidate="|".join(re.escape(c) for c in DERIVED) or "(?!)",  # (?!): matches nothing
    params:
        candidate=lambda wc: spec_for(wc.candidate),
        code=code_hash("cofitune.stages.train:derive_weights"),
    log:
        log_file("train/{candidate}"),
    benchmark:
        benchmark_file("train/{candidate}")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/derive_weights.py"
