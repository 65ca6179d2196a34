"""A job's log holds its output and, when it fails, its error with the traceback."""

from __future__ import annotations

import logging

import pytest

from cofitune.infra.logs import logged_to


def test_a_failing_job_writes_its_traceback_into_its_own_log(tmp_path):
    log_file = tmp_path / "logs" / "job.log"
    handlers = logging.getLogger().handlers[:]
    with pytest.raises(ZeroDivisionError), logged_to(log_file):
        print("started")
        logging.getLogger("cofitune.test").info("working")
        _ = 1 / 0
    text = log_file.read_text()
    assert "started" in text and "working" in text
    assert "job failed: ZeroDivisionError: division by zero" in text and "Traceback (most recent call last)" in text
    assert "_ = 1 / 0" in text  # the failing line, as on a terminal
    assert logging.getLogger().handlers == handlers  # the caller's logging is restored


def test_a_successful_job_log_has_no_error(tmp_path):
    with logged_to(tmp_path / "ok.log"):
        logging.getLogger("cofitune.test").info("done")
    assert "done" in (tmp_path / "ok.log").read_text() and "failed" not in (tmp_path / "ok.log").read_text()


def test_a_failed_attempts_log_keeps_a_second_name_that_survives_the_rerun_deleting_the_log(tmp_path):
    log_file = tmp_path / "logs" / "train" / "job.log"
    with pytest.raises(RuntimeError), logged_to(log_file):
        logging.getLogger("cofitune.test").info("step 5/60")
        raise RuntimeError("killed")
    (attempt,) = (tmp_path / "logs" / "train" / "attempts").glob("job.*.log")
    log_file.unlink()  # what Snakemake does before it reruns the job
    with logged_to(log_file):
        logging.getLogger("cofitune.test").info("step 60/60")
    assert "step 5/60" in attempt.read_text() and "killed" in attempt.read_text()
    assert list(attempt.parent.iterdir()) == [attempt]  # the successful rerun's own link is gone
    assert "step 60/60" in log_file.read_text() and "step 5/60" not in log_file.read_text()
