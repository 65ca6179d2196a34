"""A real single-node SLURM for tests: munge and SLURM's own daemons (Debian's slurm-wlm and munge),
configured and started by the test, stopped by their pids. Needs root (slurmd runs jobs as their
users) and the default config location: Snakemake's SLURM job step drops SLURM_CONF from the job's
environment, so the config must be where every SLURM command looks, /etc/slurm/slurm.conf. A config
that is already there (a real cluster's) is never touched: the tests are skipped instead."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by cofitune's tests/integration/slurm_cluster.py; removed when the test ends"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
PARTITION = "debug"  # deliberately not "gpu": the shipped profile must not need one
INSTALL_HINT = "apt-get install slurm-wlm munge (.ci/run does)"


def unavailable_reason() -> str | None:
    """Why a cluster cannot start here, or None."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): {INSTALL_HINT}"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text():
        return f"{SLURM_CONF} exists and is not ours: not touching a real cluster's config"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(state: Path, munge_socket: Path, host: str, cpus: int, memory_mb: int) -> str:
    """One node, one partition, no accounting and no cgroups: the least a real sbatch needs."""
    return "\n".join([
        MARKER,
        "ClusterName=cofitune-test",
        f"SlurmctldHost={host}",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={state / 'ctld'}",
        f"SlurmdSpoolDir={state / 'spool'}",
        f"SlurmctldPidFile={state / 'slurmctld.pid'}",
        f"SlurmdPidFile={state / 'slurmd.pid'}",
        f"SlurmctldLogFile={state / 'slurmctld.log'}",
        f"SlurmdLogFile={state / 'slurmd.log'}",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "MinJobAge=3600",  # finished jobs stay visible to squeue/scontrol (no accounting database)
        "ReturnToService=2",
        f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


@contextlib.contextmanager
def single_node_cluster(state: Path, timeout: float = 60) -> Iterator[str]:
    """Start munged, slurmctld and slurmd; yield the node's hostname once it is idle; stop them."""
    state.mkdir(parents=True, exist_ok=True)
    for sub in ("ctld", "spool"):
        (state / sub).mkdir(exist_ok=True)
    key = state / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = state / "munge.socket"
    host = socket.gethostname().split(".")[0]
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(slurm_conf(state, munge_socket, host, os.cpu_count() or 1, _memory_mb() - 1024))
    pid_files = [state / "munged.pid", state / "slurmctld.pid", state / "slurmd.pid"]
    try:
        subprocess.run(
            ["munged", "--force", f"--socket={munge_socket}", f"--key-file={key}", f"--pid-file={pid_files[0]}",
             f"--log-file={state / 'munged.log'}", f"--seed-file={state / 'munged.seed'}"], check=True,
        )
        subprocess.run(["slurmctld"], check=True)
        subprocess.run(["slurmd"], check=True)
        _wait_idle(timeout, state)
        yield host
    finally:
        _stop(pid_files)
        SLURM_CONF.unlink(missing_ok=True)


def _wait_idle(timeout: float, state: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, check=False)
        if proc.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    logs = "\n".join(p.read_text()[-1500:] for p in state.glob("*.log"))
    raise RuntimeError(f"the SLURM node did not become idle within {timeout:.0f} s:\n{logs}")


def _stop(pid_files: list[Path]) -> None:
    """SIGTERM each daemon (slurmd first, munged last), then wait for it to go."""
    for pid_file in reversed(pid_files):
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)  # raises ProcessLookupError once it has gone
                time.sleep(0.1)


def job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job` as key -> value (a finished job stays visible for MinJobAge)."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, check=True).stdout
    fields = {}
    for token in out.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields
