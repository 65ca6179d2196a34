"""SFT data from the Hugging Face Hub (`hf:org/name`): the snapshot in the local cache, downloaded
only when the cache lacks it and the environment allows the network.

The cache is tried first, so a dataset already there costs no network call and an offline run
(HF_HUB_OFFLINE or HF_DATASETS_OFFLINE) is told in the pre-flight, before any job, which dataset to
download and how.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from cofitune.data.tables import load_rows
from cofitune.infra.io import DataError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_cache() -> Path:
    """The hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache).expanduser()
    if home := os.environ.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline_variable() -> str | None:
    """The variable that switches the network off, if one is set to a true value."""
    return next((name for name in OFFLINE_VARIABLES if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")),
                None)


def snapshot_folder(path: str, label: str, revision: str | None = None) -> Path:
    """The local folder of the snapshot of `path` (hf:org/name) at `revision`: from the cache, else
    downloaded (unless offline). `label` names the entry in errors."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, IncompleteSnapshotError, LocalEntryNotFoundError

    repo_id = path.removeprefix("hf:")
    if not REPO_ID.match(repo_id):
        raise DataError(path, f"{repo_id!r} is not a Hub dataset id (hf:org/name)")
    cache, shown = hub_cache(), revision or "main"
    where = {"repo_id": repo_id, "repo_type": "dataset", "revision": revision, "cache_dir": str(cache)}
    try:
        return Path(snapshot_download(**where, local_files_only=True))
    except IncompleteSnapshotError as err:  # (a LocalEntryNotFoundError too)
        missing = f"only partly in the Hugging Face cache {cache} ({err})"
    except LocalEntryNotFoundError:
        missing = f"not in the Hugging Face cache {cache}"
    if variable := offline_variable():
        command = f"hf download --repo-type dataset {repo_id}" + (f" --revision {revision}" if revision else "")
        raise DataError(label, f"{repo_id} (revision {shown}) is {missing}; download it with `{command}` or unset {variable}")
    try:
        return Path(snapshot_download(**where))
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise DataError(label, f"could not download {repo_id} (revision {shown}) into {cache}: "
                               f"{type(err).__name__}: {err}") from None


def hub_records(path: str, label: str, revision: str | None = None, subset: str | None = None,
                split: str | None = None) -> list[dict[str, Any]]:
    """Every row of a split (and subset) of the dataset's snapshot, read by `datasets` from its folder."""
    return load_rows(str(snapshot_folder(path, label, revision)), label, name=subset, split=split or "train")
