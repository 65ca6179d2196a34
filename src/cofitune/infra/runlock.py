"""One run per results folder: a lock file inside it, naming the process that holds it.

Snakemake locks a *working directory*; two checkouts (or two working directories) writing into one
results folder would train and evaluate into each other's outputs and resume each other's
checkpoints. The lock is taken when a run starts executing jobs (not by dry runs) and released when
it ends; a lock whose process is gone (on this host) is stale and is taken over, with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".cofitune-run.lock"


class RunLockedError(RuntimeError):
    pass


def lock_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / LOCK_NAME


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    started = holder.get("process_start")
    return started is None or _process_start(int(holder["pid"])) in (None, started)


def describe(holder: dict[str, Any]) -> str:
    return (f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}, "
            f"working folder {holder.get('workdir')}")


def acquire(results_dir: str | Path, workdir: str | Path) -> str | None:
    """Take the lock of `results_dir`; the warning to show when a stale lock was taken over, else None.
    Raises RunLockedError when a live run (or one on another host, which cannot be checked) holds it."""
    path = lock_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "process_start": _process_start(os.getpid()), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "workdir": str(Path(workdir).resolve())}
    warning = None
    for _ in range(2):
        try:
            with path.open("x", encoding="utf-8") as handle:  # O_EXCL: of two runs starting at once, one wins
                json.dump(me, handle)
            return warning
        except FileExistsError:
            holder = read(path)
        if holder is None:  # unreadable: a run killed while writing it
            warning = f"replaced an unreadable lock {path}"
        elif holder.get("host") != me["host"]:
            raise RunLockedError(
                f"{path.parent} is in use by another run ({describe(holder)}): one run per results folder. Wait for it, "
                f"or set another results_dir; if that run has ended (its host is not this one, so this cannot be checked), "
                f"delete {path}")
        elif holder.get("pid") == me["pid"] or _alive(holder):
            raise RunLockedError(
                f"{path.parent} is in use by another run ({describe(holder)}): one run per results folder. Wait for it "
                f"to end, or set another results_dir")
        else:
            warning = f"took over the stale lock of a run that is no longer running ({describe(holder)}): {path}"
        path.unlink(missing_ok=True)
    raise RunLockedError(f"could not take the lock {path}: another run took it at the same moment")


def read(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def release(results_dir: str | Path) -> None:
    """Remove the lock if this process holds it (a run that lost it must not free another's)."""
    path = lock_path(results_dir)
    holder = read(path)
    if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)
