"""Running the real Snakemake workflow from tests, in a scratch working directory."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cofitune.infra import io

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "workflow" / "presets"


def scratch_workdir(path: Path) -> Path:
    """A working directory that sees the repo's data/ (config paths are relative to it)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "data").symlink_to(REPO / "data")
    return path


def variant(workdir: Path, name: str, preset: str = "smoke", **sections) -> Path:
    """A copy of a preset with whole top-level sections replaced, written into the workdir."""
    config = {**io.read_yaml(PRESETS / f"{preset}.yaml"), **sections}
    path = workdir / f"{name}.yaml"
    io.write_yaml(path, config)
    return path


def _command(workdir: Path, args: tuple[str, ...], configfile: Path | tuple[Path, ...], cores: str | None = "2",
             snakefile: Path = REPO / "Snakefile") -> tuple[list[str], dict[str, str]]:
    configfiles = [str(path) for path in (configfile if isinstance(configfile, tuple) else (configfile,))]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # accelerate, as in the venv
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
        *(("--cores", cores) if cores else ()), "--configfile", *configfiles, "--config", "results_dir=results", *args,
    ]
    return cmd, env


def snakemake(workdir: Path, *args: str, configfile: Path | tuple[Path, ...] = PRESETS / "smoke.yaml", timeout: int = 1800,
              cores: str | None = "2", snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    cmd, env = _command(workdir, args, configfile, cores, snakefile)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)


WALL_TIME_COLUMNS = {"train_wall_seconds", "eval_wall_seconds"}  # the only columns two identical runs may differ in


def table_differences(a: Path, b: Path) -> dict[str, str]:
    """Parquet table name -> what differs between two results folders, wall-time columns aside."""
    import pyarrow.parquet as pq

    names = sorted({p.name for p in (a / "tables").glob("*.parquet")} | {p.name for p in (b / "tables").glob("*.parquet")})
    differences = {}
    for name in names:
        if not (a / "tables" / name).is_file() or not (b / "tables" / name).is_file():
            differences[name] = "missing in one run"
            continue
        rows_a, rows_b = (pq.read_table(root / "tables" / name).to_pylist() for root in (a, b))
        if len(rows_a) != len(rows_b):
            differences[name] = f"{len(rows_a)} vs {len(rows_b)} rows"
            continue
        for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=True)):
            diff = sorted(k for k in x.keys() | y.keys() if k not in WALL_TIME_COLUMNS and not _same(x.get(k), y.get(k)))
            if diff:
                differences[name] = f"row {i}: {diff}"
                break
    return differences


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant, like a crash or a node failure (launchers such as
    torchrun put their workers in process groups of their own, so killing a group is not enough)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=30)


def start_snakemake(workdir: Path, *args: str, configfile: Path = PRESETS / "smoke.yaml") -> subprocess.Popen:
    """A run in its own process group, so a test can kill it (and its jobs) like a crash would."""
    cmd, env = _command(workdir, args, configfile)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def repo_copy(dest: Path) -> Path:
    """The workflow and its package, copied: a test may edit the copy's code and plan with it."""
    dest.mkdir(parents=True)
    for part in ("Snakefile", "workflow", "src", "envs"):
        source = REPO / part
        (shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__")) if source.is_dir()
         else shutil.copy2(source, dest / part))
    return dest


def planned_paths(output: str) -> list[str]:
    """Parse a dry run's job blocks: every output, log and benchmark path the plan writes."""
    paths = []
    for line in output.splitlines():
        if match := re.match(r"\s+(?:output|log|benchmark): (.*)$", line):
            paths += [p.strip() for p in match.group(1).split(",") if p.strip()]
    return paths


def paths_outside(output: str, workdir: Path, results_dir: str = "results") -> list[str]:
    """The planned paths that do not lie inside results_dir (relative to the working folder)."""
    root = (workdir / results_dir).resolve()
    return [p for p in planned_paths(output) if not (workdir / p).resolve().is_relative_to(root)]


def planned_gpus(output: str) -> dict[str, set[int]]:
    """Parse a dry run's job blocks: rule -> the `gpu` resource values its jobs request."""
    gpus: dict[str, set[int]] = {}
    rule = None
    for line in output.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):", line):
            rule = match.group(1)
        elif rule and (match := re.match(r"\s+resources: .*\bgpu=(\d+)", line)):
            gpus.setdefault(rule, set()).add(int(match.group(1)))
    return gpus


def planned_jobs(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table: rule -> number of jobs (empty when nothing to do)."""
    jobs = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
            if match and match.group(1) != "total":
                jobs[match.group(1)] = int(match.group(2))
            elif line.strip().startswith("total"):
                break
    return jobs


def describe_failure(proc: subprocess.CompletedProcess, workdir: Path) -> str:
    logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((workdir / "results" / "logs").rglob("*.log")))
    return f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}\n{logs}"
