"""Logging of jobs: every job's log holds its progress and, when it fails, its error with the traceback."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("cofitune")


def setup_logging(level: int = logging.INFO) -> None:
    """For command-line entry points: log lines to stderr (a shell rule redirects it into its log)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


@contextlib.contextmanager
def logged_to(path: str | Path) -> Iterator[None]:
    """Send stdout, stderr and logging of a workflow script to its log file, the error included.

    An exception that escapes the block is written to the log with its traceback before it is
    re-raised (Snakemake then points at the log): on a cluster the log is all a user has. A failed
    or killed attempt's log also stays under attempts/ beside it (`keep_attempt`).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    with open(path, "w", buffering=1, encoding="utf-8") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        attempt = keep_attempt(path)
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.handlers, root.level = [handler], logging.INFO
        try:
            yield
        except BaseException as err:
            log.error("job failed: %s: %s", type(err).__name__, err, exc_info=True)
            raise
        else:
            if attempt is not None:
                attempt.unlink(missing_ok=True)  # it succeeded: its log is the job's log
        finally:
            root.handlers, root.level = saved


ATTEMPTS = "attempts"


def attempt_path(log_path: str | Path) -> Path:
    """Where an attempt's log stays: <log folder>/attempts/<name>.<start time>.<pid>.log."""
    log_path = Path(log_path)
    return log_path.parent / ATTEMPTS / f"{log_path.stem}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}{log_path.suffix}"


def keep_attempt(log_path: str | Path) -> Path | None:
    """A second name (hard link) for an open log: Snakemake deletes a job's log before rerunning it,
    so a failed or killed attempt's log would be lost; the caller removes the link once the job
    succeeds. None where the file system has no hard links."""
    link = attempt_path(log_path)
    try:
        link.parent.mkdir(exist_ok=True)
        os.link(log_path, link)
    except OSError:
        return None
    return link
