# What `snakemake --report` shows beyond the plots: the search as a tree, and the summary and the
# final model's card as pages (the report displays HTML and pictures, not Markdown).
rule draw_search_tree:
    input:
        trace=SEARCH_TRACE,
        summary=SUMMARY,
    output:
        report(SEARCH_TREE, caption="../report/search_tree.rst", category="Search"),
    params:
        code=code_hash("cofitune.stages.report:draw_search_tree"),
    log:
        log_file("draw_search_tree"),
    benchmark:
        benchmark_file("draw_search_tree")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/draw_search_tree.py"


rule render_summary_page:
    input:
        SUMMARY_MD,
    output:
        report(SUMMARY_PAGE, caption="../report/summary.rst", category="Results"),
    params:
        title="Summary",
        code=code_hash("cofitune.stages.report:render_page"),
    log:
        log_file("render_summary_page"),
    benchmark:
        benchmark_file("render_summary_page")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/render_page.py"


rule render_model_card_page:
    input:
        FINAL_DIR,  # its README.md is the card
    output:
        report(MODEL_CARD_PAGE, caption="../report/model_card.rst", category="Final model"),
    params:
        title="Model card",
        code=code_hash("cofitune.stages.report:render_page"),
    log:
        log_file("render_model_card_page"),
    benchmark:
        benchmark_file("render_model_card_page")
    conda:
        "../../envs/cofitune.yaml"
    script:
        "../scripts/render_page.py"
