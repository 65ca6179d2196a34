"""The smoke workflow, run once per test session and shared by every test that only reads it."""

from __future__ import annotations

import pytest

from tests.integration.helpers import describe_failure, scratch_workdir, snakemake


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    workdir = scratch_workdir(tmp_path_factory.mktemp("smoke"))
    proc = snakemake(workdir)
    assert proc.returncode == 0, describe_failure(proc, workdir)
    return workdir
