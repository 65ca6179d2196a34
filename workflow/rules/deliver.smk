# The hand-off: the search's final model as a Hugging Face folder with its model card, and its
# region in the formats of other trainers (axolotl, PEFT, torchtune).
rule write_final_model:
    input:
        model=MODEL_DIR,
        trained=lambda wc: trained_file(final_candidate()),
        train_metrics=lambda wc: train_metrics(final_candidate()),
        summary=SUMMARY,
        claims=CLAIMS,
    output:
        directory(FINAL_DIR),
    params:
        candidate=lambda wc: final_candidate(),
        region_source=lambda wc: region_source(),
        config=RECORDED_CONFIG,
        importance_sources=IMPORTANCE_SOURCES,
        code=code_hash("cofitune.stages.deliver:write_final_model"),
    log:
        log_file("write_final_model"),
    benchmark:
        benchmark_file("write_final_model")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/write_final_model.py"


rule export_region:
    input:
        model=MODEL_DIR,
        trained=lambda wc: trained_file(final_candidate()),
        train_metrics=lambda wc: train_metrics(final_candidate()),
    output:
        directory(EXPORT_DIR),
    params:
        candidate=lambda wc: final_candidate(),
        code=code_hash("cofitune.stages.deliver:export_region"),
    log:
        log_file("export_region"),
    benchmark:
        benchmark_file("export_region")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/export_region.py"
