"""Tables read through `datasets` (Parquet, CSV, Arrow files, and dataset folders such as a Hub
snapshot) into plain rows, without leaving a cache behind."""

from __future__ import annotations

from typing import Any

from cofitune.infra.io import DataError

SUFFIXES = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


def load_rows(builder: str, label: str, **options: Any) -> list[dict[str, Any]]:
    """Every row `datasets.load_dataset(builder, **options)` reads (a packaged builder with data_files,
    or a dataset folder), in memory, its cache in a temporary folder: nothing is written beside the
    data or to ~/.cache. Nulls are dropped, so that a column a row lacks (a table has every column in
    every row) reads as absent."""
    import tempfile

    import datasets

    bars = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="cofitune-datasets-") as cache:
            options.setdefault("split", "train")
            rows = datasets.load_dataset(builder, keep_in_memory=True, cache_dir=cache, **options).to_list()
    except (ValueError, OSError, TypeError, datasets.exceptions.DatasetsError) as err:
        cause = err.__cause__ or err
        what = f"a {builder} file" if builder in SUFFIXES.values() else "a dataset"
        raise DataError(label, f"not readable as {what} ({type(cause).__name__}: {cause})") from err
    finally:
        if bars:
            datasets.enable_progress_bars()
    return [{key: value for key, value in row.items() if value is not None} for row in rows]
