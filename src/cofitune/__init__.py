"""CoFiTune: coarse-to-fine fine-tuning of an aligned LLM for a speciality without losing versatility.

The package is layered; a module imports only from its own subpackage and from those listed before it
(tests/unit/test_architecture.py enforces it, function-level imports included):

    infra         file formats, logging, provenance, records, run lock, memory, statistics
    models        loading a model, its regions (layers, roles), FSDP2 sharding
    data          SFT rows, prompts, tokenization
    datagen       the project's own seeded data
    fine          the fine level: importance and the soft-mask
    training      the loop, the optimizer, MoFO
    methods       what each method does, the candidates and their ids, the baselines
    coarse        the coarse level: the tree search and its decisions
    evaluation    lm-eval, our task files, item splits, scores, the forgetting signal
    evidence      tables, claims, Markdown, plots, pages
    handoff       the model card, exports for other trainers
    configuration the config's checks before any job, and the settings each section gives
    stages        one module per rule file: paths in, paths out
    cli           the `cofitune` command
"""

__version__ = "0.1.0"
