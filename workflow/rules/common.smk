# Config validation, paths and wildcard constraints. No logic beyond that: the method lives in src/.
import json
import re
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
SRC = REPO / "src"
# The rules' scripts and `accelerate launch -m cofitune.stages.train` find the package without an install
# step, inside or outside a conda env: the package is put on the path of every job.
sys.path.insert(0, str(SRC))
# (Set here, not asserted with envvars: the workflow defines it, users need not.)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from cofitune.infra import runlock
from cofitune.coarse import search
from cofitune.evidence.claims import CLAIMS_FILE
from cofitune.methods.candidates import (
    BASE_ID,
    ID_PATTERN,
    REPLICATE_GROUPS,
    candidate_from_spec,
    control_region,
    parse_replicate,
    training_seed,
    region_id,
    spec_from_id,
    specs_by_id,
    unmasked_region,
    with_replicates,
)
from cofitune.methods.recipes import baseline_specs, fixed_rule_specs
from cofitune.configuration.evaluation import evaluation_settings
from cofitune.coarse.settings import SearchSection
from cofitune.fine.masking import SoftmaskSection
from cofitune.configuration.checks import check_config, check_config_files, check_inputs, static_specs
from cofitune.infra.io import read_yaml
from cofitune.data.sources import local_path
from cofitune.handoff.region_file import read_region
from cofitune.infra.provenance import code_hash
from cofitune.infra.records import LevelDecision
from cofitune.evaluation.splits import CONFIRM, SELECT, SPLITS

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
# Snakemake's YAML loader keeps the last of two equal keys silently: every config file is read
# again, strictly, so a repeated block is named (file, key, both lines) instead of dropped.
check_config_files([p for p in workflow.overwrite_configfiles or ["config.yaml"] if Path(p).is_file()])
check_config(config, read_yaml(SCHEMA))  # concise errors naming the key, before any job is planned
validate(config, str(SCHEMA))  # fills the defaults
# Everything checkable without a model, before any job (a dry run fails the same way): every data
# file with all its defects, the model's location, every task name.
for warning in check_inputs(config, project=REPO):
    logger.warning(f"cofitune: {warning}")


wildcard_constraints:
    candidate=ID_PATTERN,
    split="|".join(SPLITS),


# ---------------------------------------------------------------- paths: one helper per output family
RESULTS = Path(config["results_dir"])


# One run per results folder, whichever working folder it starts from (Snakemake's own lock covers
# only its working folder). Taken when jobs are about to run: dry runs and jobs on a cluster skip it.
onstart:
    try:
        stale = runlock.acquire(RESULTS, Path.cwd())
    except runlock.RunLockedError as err:
        raise WorkflowError(f"cofitune: {err}") from None
    if stale:
        logger.warning(f"cofitune: {stale}")


onsuccess:
    runlock.release(RESULTS)


onerror:
    runlock.release(RESULTS)

MODEL_DIR = RESULTS / "model" / "base"
TRAIN_DATA = RESULTS / "data" / "train"
TRAIN_REPORT = RESULTS / "data" / "train_report.json"
TASKS_DIR = RESULTS / "tasks"
TABLES = [RESULTS / "tables" / "candidates.parquet", RESULTS / "tables" / "samples.parquet"]
SUMMARY = RESULTS / "tables" / "summary.parquet"
SUMMARY_MD = RESULTS / "tables" / "summary.md"
SEARCH_TRACE = RESULTS / "tables" / "search_trace.parquet"
CLAIMS = RESULTS / "tables" / CLAIMS_FILE
IMPORTANCE_TABLE = RESULTS / "tables" / "importance.parquet"
COMBINED_IMPORTANCE = RESULTS / "importance" / "combined.safetensors"
PLOTS = [RESULTS / "plots" / "tradeoff.png", RESULTS / "plots" / "loss_curves.png"]
FINAL_DIR = RESULTS / "final"  # the CoFiTune model as a Hugging Face folder (with a search only)
EXPORT_DIR = RESULTS / "export"  # its region for other trainers
SEARCH_TREE = RESULTS / "plots" / "search_tree.svg"
SUMMARY_PAGE = RESULTS / "report" / "summary.html"
MODEL_CARD_PAGE = RESULTS / "report" / "model_card.html"


def train_dir(candidate):
    return RESULTS / "train" / candidate


def trained_file(candidate):
    return train_dir(candidate) / "trained.safetensors"


def train_metrics(candidate):
    return train_dir(candidate) / "train_metrics.json"


def train_checkpoint(candidate):
    return train_dir(candidate) / "checkpoint"


def eval_metrics(candidate, split=CONFIRM):
    return RESULTS / "eval" / split / candidate / "metrics.json"


def eval_samples(candidate, split=CONFIRM):
    return RESULTS / "eval" / split / candidate / "samples.parquet"


def importance_source(source):
    return RESULTS / "importance" / "sources" / f"{source}.safetensors"


def importance_plots():
    return [RESULTS / "plots" / f"importance_{unit}.png" for unit in ("head", "intermediate", "output")]


def level_decision(level):
    return RESULTS / "search" / f"level_{level}.json"


def log_file(name):
    return RESULTS / "logs" / f"{name}.log"


# Shell rules keep a failed or killed attempt's log under attempts/ beside it (a hard link that the
# job removes once it succeeds), as script rules do with cofitune.infra.logs.logged_to: Snakemake deletes
# a job's log before it reruns the job.
def keeping_attempt_log(command):
    """`command` (which writes {log}), with the attempt's log linked under attempts/ until it succeeds."""
    keep = (
        'ATTEMPT="$(dirname {log:q})/attempts/$(basename {log:q} .log).$(date +%Y%m%dT%H%M%S).$$.log"; '
        'mkdir -p "$(dirname "$ATTEMPT")"; : > {log:q}; ln -f {log:q} "$ATTEMPT" 2>/dev/null || ATTEMPT=; '
    )
    return "".join([keep, command, '; [ -z "$ATTEMPT" ] || rm -f "$ATTEMPT"'])


def benchmark_file(name):
    return RESULTS / "benchmarks" / f"{name}.tsv"


# ---------------------------------------------------------------- candidates and the search

# Candidates known up front (enabled baselines and configured extras); search nodes come from
# the search checkpoints and are identified by their region ids.
CANDIDATE_SPECS = specs_by_id(static_specs(config))
BASELINE_IDS = list(specs_by_id(baseline_specs(config["baselines"])))
# The fixed rules among the baselines: candidate id -> its name in baselines.fixed_rules (for the claims).
FIXED_RULE_IDS = {candidate_from_spec(spec).id: name for name, spec in fixed_rule_specs(config["baselines"]).items()}
SEARCH = config["search"]
# search.reuse: the region another run chose (checked by the pre-flight) is trained without a search
REUSED = read_region(SEARCH["reuse"]) if SEARCH.get("reuse") else None
SEARCH_LEVELS = [] if SEARCH["mode"] == "off" or REUSED else list(range(1, search.n_levels(SEARCH["mode"]) + 1))
HAS_FINAL = bool(SEARCH_LEVELS) or REUSED is not None  # a CoFiTune model: searched here, or reused

# Fine level: importance sources (default: the speciality training data, as the reference scripts).
IMPORTANCE_SOURCES = config["importance"]["sources"] or {"sft": config["speciality"]["train"]}
# The forgetting signal's text: the importance data (general text by default), every source's files.
# An entry is a path, hf:org/name, or an object with options: deduplicated by its JSON; the rules'
# inputs are the local files among them (a Hub dataset is read from its cache by the stage).
KL_DATA = list({json.dumps(e, sort_keys=True): e for files in IMPORTANCE_SOURCES.values() for e in files}.values())


def local_files(entries):
    """The local files of SFT data entries: what Snakemake watches (Hub datasets are not files here)."""
    return [path for path in map(local_path, entries) if path]
USES_SOFTMASK = SEARCH["final_softmask"] and HAS_FINAL or any(s.get("softmask") for s in CANDIDATE_SPECS.values())
IMPORTANCE_OUTPUTS = [IMPORTANCE_TABLE] if USES_SOFTMASK else []

EVALUATION = evaluation_settings(config)


def all_cores():
    """Threads of the model-running rules: every core Snakemake may use (one such job at a time,
    torch uses them all), or 1 where no core count is set (`--report`, `--lint`)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def accelerate_config():
    """A shipped config by name (cpu, gpu, multi_gpu) or the user's own file."""
    name = config["training"]["accelerate_config"]
    shipped = REPO / "workflow" / "accelerate" / f"{name}.yaml"
    return str(shipped) if shipped.is_file() else name


def launcher():
    """What starts a training or importance job's processes: accelerate (its config decides, or
    training.processes), torchrun (training.processes on this node), or torchrun-slurm (srun starts
    one torchrun per node of the SLURM allocation, training.processes on each, meeting at the first
    node). Every piece is quoted or a number."""
    training = config["training"]
    processes = training["processes"]
    if training["launcher"] == "torchrun":
        return f"torchrun --standalone --nproc_per_node {int(processes or 1)}"
    if training["launcher"] == "torchrun-slurm":
        head = '"$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'
        return (f'srun --ntasks-per-node=1 torchrun --nnodes "$SLURM_NNODES" --nproc_per_node {int(processes or 1)}'
                f' --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint {head}:29500')
    extra = f" --num_processes {int(processes)}" if processes else ""
    # the config file is the rule's input (set as $ACCELERATE_CFG by the rule): paths stay out of
    # params, so a moved checkout is not a changed parameter
    return f'accelerate launch --config_file "$ACCELERATE_CFG"{extra}'


def spec_for(candidate):
    model, replicate_seed = parse_replicate(candidate)
    if replicate_seed is not None:  # a replicate: its model's spec, trained under another seed
        return {**spec_for(model), "id": candidate}
    return CANDIDATE_SPECS.get(candidate) or {**spec_from_id(candidate), "id": candidate}


def seed_for(candidate):
    return training_seed(candidate, config["seed"])


def training_for(candidate):
    """The training settings of one candidate: the config's, with the candidate's own overrides.
    Without `report_to`: adding a tracker must not retrain the finished candidates (REPORT_TO)."""
    training = {**config["training"], **spec_for(candidate).get("training", {})}
    return {key: value for key, value in training.items() if key != "report_to"}


# training.report_to reaches the training jobs through the environment, outside their params and
# command, so changing it reruns none (the trackers change no result; SLURM jobs inherit it)
os.environ.update(COFITUNE_REPORT_TO=json.dumps(config["training"].get("report_to", [])))


envvars:
    "COFITUNE_REPORT_TO",

# The config as the tables and the final model record it: without the trackers (they change no result)
RECORDED_CONFIG = {**config, "training": {k: v for k, v in config["training"].items() if k != "report_to"}}


def recipe_of(candidate):
    """The candidate and its method's recipe, which answers the DAG's questions about it."""
    built = candidate_from_spec(spec_for(candidate))
    return built, built.recipe


def waits_for_final(candidate):
    built, recipe = recipe_of(candidate)
    return recipe.waits_for_final(built)


# Models made from another's weights without training (Wise-FT from full SFT): candidate -> parent.
def derived_from(candidate):
    built, recipe = recipe_of(candidate)
    return recipe.derived_from(built)


DERIVED = {c: parent for c in CANDIDATE_SPECS if (parent := derived_from(c))}


def budget_input(wildcards):
    """A baseline matched to the CoFiTune model's budget reads it from that model's record."""
    return {"budget": train_metrics(final_candidate())} if waits_for_final(wildcards.candidate) else {}


def importance_input(wildcards):
    return {"importance": COMBINED_IMPORTANCE} if spec_for(wildcards.candidate).get("softmask") else {}


def trained_tensors(wildcards):
    if wildcards.candidate == BASE_ID:
        return {}
    return {"trained": trained_file(wildcards.candidate)}


def chosen_nodes(until_level):
    """The nodes chosen at levels 1..until_level, read from the checkpoints' decision files."""
    decisions = [LevelDecision.read(checkpoints.decide_level.get(level=k).output[0]) for k in range(1, until_level + 1)]
    return [search.Node.from_id(d.chosen_id) for d in decisions]


def level_contenders(level):
    mode = SEARCH["mode"]
    return search.contenders(mode, level, chosen_nodes(level - 1), SEARCH["keep_parent"])


def final_candidate():
    if REUSED:
        return region_id(REUSED.layer_range, REUSED.module_set, softmask=SEARCH["final_softmask"])
    chosen = chosen_nodes(len(SEARCH_LEVELS))[-1]
    return region_id(chosen.layer_range, chosen.module_set, softmask=SEARCH["final_softmask"])


def region_source():
    """Where the final model's region came from, for its card and region.json."""
    return REUSED.describe() if REUSED else "searched by this run"


def node_runs(node_id):
    """A search node's evaluated runs: itself, and its other seeds when `replicates.models` names
    `search` or the node; the level's decision averages and resamples them."""
    return with_replicates([node_id], {"search": [node_id]}, config["replicates"], config["seed"], lambda c: True)


def level_runs(level):
    return {n.id: node_runs(n.id) for n in level_contenders(int(level))}


def final_unmasked():
    """The final model's region without the soft-mask (the last level's kept node): the fine level's reference."""
    unmasked = unmasked_region(final_candidate()) if HAS_FINAL else None
    return [unmasked] if unmasked else []


def final_controls():
    """The fine level's controls of the final model (search.fine_controls on its region)."""
    if not (HAS_FINAL and SEARCH["final_softmask"]):
        return []
    return [control_region(final_candidate(), control) for control in SEARCH["fine_controls"]]


def known_candidates():
    """The models known before the search (base, baselines, extras, and their replicates): the
    DAG runs them alongside the search instead of after it. A baseline matched to the final
    model's budget waits for the search, like the final model."""
    ids = [BASE_ID, *(c for c in CANDIDATE_SPECS if not waits_for_final(c))]
    return with_replicates(ids, {"baselines": BASELINE_IDS}, config["replicates"], config["seed"],
                           lambda c: candidate_from_spec(spec_for(c)).trains)


def search_nodes():
    return [n.id for level in SEARCH_LEVELS for n in level_contenders(level)]


def reported_candidates(wildcards=None):
    """The models the run reports, scored on the confirm items, in a stable order: base, baselines
    and extras, the final model, the chosen node (its region unmasked) and the fine level's controls."""
    final = [final_candidate()] if HAS_FINAL else []
    ids = list(dict.fromkeys([BASE_ID, *CANDIDATE_SPECS, *final, *final_unmasked(), *final_controls()]))
    groups = dict(zip(REPLICATE_GROUPS, [final, final_unmasked(), final_controls(), BASELINE_IDS, search_nodes()], strict=True))
    return with_replicates(ids, groups, config["replicates"], config["seed"],
                           lambda c: candidate_from_spec(spec_for(c)).trains)


def searched_runs(wildcards=None):
    """Every run of every search node, once (a kept parent contends again one level down), scored
    on the select items (what the search decides on)."""
    return list(dict.fromkeys(r for level in SEARCH_LEVELS for runs in level_runs(level).values() for r in runs))


def evaluations(wildcards=None):
    """(candidate, split) of every evaluation the tables hold: the search on select, the reported models on confirm."""
    return [*((c, SELECT) for c in searched_runs()), *((c, CONFIRM) for c in reported_candidates())]


def evaluated_candidates(wildcards=None):
    """Every evaluated model, once, whichever split."""
    return list(dict.fromkeys(c for c, _ in evaluations()))


def deliverables():
    """What a search hands over: the final model, its region for other trainers, and the report's
    pictures and pages of both."""
    if not HAS_FINAL:
        return []
    return [FINAL_DIR, EXPORT_DIR, MODEL_CARD_PAGE] + ([SEARCH_TREE] if SEARCH_LEVELS else [])


def trained_candidates(wildcards=None):
    return [c for c in evaluated_candidates() if c != BASE_ID]

