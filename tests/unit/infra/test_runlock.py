"""One run per results folder: the lock refuses a live run's folder, takes over a dead one's, and
frees only its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cofitune.infra import runlock


def _holder(tmp_path, **fields):
    path = runlock.lock_path(tmp_path)
    path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "then", "workdir": "/a", **fields}))
    return path


def test_the_first_run_takes_the_lock_and_releases_it(tmp_path):
    assert runlock.acquire(tmp_path / "results", tmp_path) is None
    holder = runlock.read(runlock.lock_path(tmp_path / "results"))
    assert holder["pid"] == os.getpid() and holder["workdir"] == str(tmp_path.resolve())
    runlock.release(tmp_path / "results")
    assert not runlock.lock_path(tmp_path / "results").exists()


def test_a_live_run_is_refused_naming_the_holder(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _holder(tmp_path, pid=sleeper.pid, process_start=runlock._process_start(sleeper.pid), workdir="/checkout-a")
        with pytest.raises(runlock.RunLockedError, match=rf"in use by another run \(process {sleeper.pid} on .*working folder /checkout-a\)"):
            runlock.acquire(tmp_path, tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_dead_runs_lock_is_stale_and_taken_over_with_a_warning(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _holder(tmp_path, pid=dead.pid, workdir="/checkout-a")
    warning = runlock.acquire(tmp_path, tmp_path)
    assert warning.startswith(f"took over the stale lock of a run that is no longer running (process {dead.pid}")
    assert runlock.read(runlock.lock_path(tmp_path))["pid"] == os.getpid()


def test_a_reused_pid_is_not_the_run_that_held_the_lock(tmp_path):
    _holder(tmp_path, pid=os.getppid(), process_start="1")  # a live process, but not the one that started then
    if runlock._process_start(os.getppid()) in (None, "1"):
        pytest.skip("no /proc start times here")
    assert "stale lock" in runlock.acquire(tmp_path, tmp_path)


def test_a_lock_from_another_host_is_refused_with_how_to_release_it(tmp_path):
    path = _holder(tmp_path, host="node-17")
    with pytest.raises(runlock.RunLockedError, match=f"on node-17.*delete {path}"):
        runlock.acquire(tmp_path, tmp_path)


def test_release_frees_only_its_own_lock(tmp_path):
    path = _holder(tmp_path, pid=os.getpid() + 1)
    runlock.release(tmp_path)
    assert path.exists()
