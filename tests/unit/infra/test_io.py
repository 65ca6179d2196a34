"""File formats: atomic writes."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from cofitune.infra import io


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_refused_write_names_the_output_and_leaves_nothing(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OSError, match=f"could not write {folder / 'x.json'}: Permission denied; nothing was left"):
            io.write_json(folder / "x.json", {})
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_a_refused_write_reads_like_a_full_disk(tmp_path, monkeypatch):
    """(The same message whatever refuses the write: here mkstemp, as a read-only folder does.)"""
    import errno

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io.tempfile, "mkstemp", refused)
    with pytest.raises(OSError, match=f"could not write {tmp_path / 'x.json'}: Permission denied; nothing was left") as err:
        io.write_json(tmp_path / "x.json", {})
    assert err.value.errno == errno.EACCES and list(tmp_path.iterdir()) == []


def test_a_truncated_safetensors_file_is_found_from_its_header_alone(tmp_path):
    path = tmp_path / "model.safetensors"
    io.save_tensors(path, {"w": torch.ones(64, 64)})
    assert io.safetensors_problem(path) is None
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size - 10])
    assert io.safetensors_problem(path) == f"truncated: {size - 10:,} bytes of the {size:,} its header lists (an interrupted copy or download?)"
    path.write_bytes(b"\x00" * 4)
    assert "shorter than its own header" in io.safetensors_problem(path) or "not a readable" in io.safetensors_problem(path)


def test_a_repeated_yaml_key_is_named_with_both_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: 1\n  c: 2\n  b: 3\n")
    with pytest.raises(io.DataError, match=r"c.yaml:4: key 'b' appears twice in one mapping \(first on line 2\)"):
        io.read_yaml(path)
    path.write_text("base: &x {a: 1}\nother:\n  <<: *x\n  b: 2\nlist: [{a: 1}, {a: 2}]\n")
    assert io.read_yaml(path)["other"] == {"a": 1, "b": 2}  # merge keys and equal keys in different mappings are fine
    path.write_text("a: [1\n")
    with pytest.raises(io.DataError, match=r"c\.yaml:2: not valid YAML"):
        io.read_yaml(path)


def test_lm_eval_task_yaml_with_function_tags_parses_for_the_syntax_check(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("task: t\nprocess_docs: !function utils.process\n")
    assert io.yaml_syntax_problem(path) is None
    path.write_text("task: t\n  x: 1\n")
    assert io.yaml_syntax_problem(path).startswith(f"{path}:2: not valid YAML")
