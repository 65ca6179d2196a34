"""File formats: atomic writes."""

from __future__ import annotations

import pytest

from cofitune import io


def test_atomic_writes_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), io.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "a").write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
