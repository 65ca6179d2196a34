# cofitune: coarse-to-fine fine-tuning, as a Snakemake workflow. Table of contents only:
# config handling and paths live in workflow/rules/common.smk, one rule file per stage.

# A preset given with --configfile replaces config.yaml instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/importance.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/deliver.smk"
include: "workflow/rules/report.smk"

# Seconds of bookkeeping on small files: on a cluster they run in the submitting Snakemake
# instead of waiting in the queue (every model-loading rule is submitted).
localrules:
    all,
    make_tasks,
    combine_importance,
    tabulate_importance,
    decide_level,
    aggregate_tables,
    summarise_results,
    plot_results,
    draw_search_tree,
    render_summary_page,
    render_model_card_page,
    export_region,


rule all:
    default_target: True
    input:
        TABLES,
        SUMMARY,
        PLOTS,
        IMPORTANCE_OUTPUTS,
        SUMMARY_PAGE,
        deliverables(),
        # known up front, so baselines run alongside the search instead of after it:
        [eval_metrics(c, CONFIRM) for c in known_candidates()],
