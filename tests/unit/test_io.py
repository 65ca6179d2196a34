"""File formats: atomic writes."""

from __future__ import annotations

import os
import stat

import pytest
import torch

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


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    def no_space(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "save_file", no_space)
    target = tmp_path / "trained.safetensors"
    with pytest.raises(OSError, match=f"could not write {target}: No space left on device") as err:
        io.save_tensors(target, {"w": torch.ones(2)})
    assert err.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_a_corrupted_safetensors_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "trained.safetensors"
    io.save_tensors(path, {"w": torch.ones(64)})
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(io.DataError, match=f"{path}: not a readable safetensors file .*delete it and rerun the job that writes it"):
        io.load_tensors(path)
    with pytest.raises(io.DataError, match="file not found"):
        io.load_tensors(tmp_path / "missing.safetensors")


def test_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o002)  # a group that shares the results folder
    try:
        io.write_json(tmp_path / "a.json", {})
        with io.atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o775
