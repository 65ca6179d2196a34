# Config validation, paths and wildcard constraints. No logic beyond that: the method lives in src/.
import json
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
SRC = REPO / "src"
# The rules' scripts and `accelerate launch -m cofitune.cli` find the package without an install
# step, inside or outside a conda env: the package is put on the path of every job.
sys.path.insert(0, str(SRC))
# (Set here, not asserted with envvars: the workflow defines it, users need not.)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))

from snakemake.utils import validate

from cofitune.candidates import BASE_ID, ID_PATTERN, specs_by_id
from cofitune.configuration import check_config
from cofitune.io import read_yaml
from cofitune.provenance import code_hash
from cofitune.tasks import SPECIALITY_PREFIX

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
check_config(config, read_yaml(SCHEMA))  # concise errors naming the key, before any job is planned
validate(config, str(SCHEMA))  # fills the defaults


wildcard_constraints:
    candidate=ID_PATTERN,


RESULTS = Path(config["results_dir"])
MODEL_DIR = RESULTS / "model" / "base"
TRAIN_DATA = RESULTS / "data" / "train"
TASKS_DIR = RESULTS / "tasks"
TABLES = [RESULTS / "tables" / "candidates.parquet", RESULTS / "tables" / "samples.parquet"]

CANDIDATE_SPECS = specs_by_id(config["candidates"])  # the trained ones
TRAINED = list(CANDIDATE_SPECS)
CANDIDATES = [BASE_ID, *TRAINED]

# Fine level: importance sources (default: the speciality training data, as the reference scripts).
IMPORTANCE_SOURCES = config["importance"]["sources"] or {"sft": config["speciality"]["train"]}
COMBINED_IMPORTANCE = RESULTS / "importance" / "combined.safetensors"
SOFTMASKED = [c for c, spec in CANDIDATE_SPECS.items() if spec.get("softmask")]
IMPORTANCE_OUTPUTS = [RESULTS / "tables" / "importance.parquet"] if SOFTMASKED else []

EVALUATION = {
    **config["evaluation"],
    "speciality": [SPECIALITY_PREFIX + name for name in config["speciality"]["tasks"]],
    "groups": config["versatility"]["groups"],
    "metrics": config["versatility"]["metrics"],
    "include_path": [str(Path(p).resolve()) for p in config["versatility"]["include_path"]],
    "seed": config["seed"],
}


def accelerate_config():
    """A shipped config by name (cpu, gpu, multi_gpu) or the user's own file."""
    name = config["training"]["accelerate_config"]
    shipped = REPO / "workflow" / "accelerate" / f"{name}.yaml"
    return str(shipped) if shipped.is_file() else name


def importance_input(wildcards):
    return {"importance": COMBINED_IMPORTANCE} if wildcards.candidate in SOFTMASKED else {}


def trained_tensors(wildcards):
    if wildcards.candidate in CANDIDATE_SPECS:
        return {"trained": RESULTS / "train" / wildcards.candidate / "trained.safetensors"}
    return {}


def log_file(name):
    return RESULTS / "logs" / f"{name}.log"


def benchmark_file(name):
    return RESULTS / "benchmarks" / f"{name}.tsv"
