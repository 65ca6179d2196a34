"""region.json: written and read by one module; a reused region names its family and source."""

from __future__ import annotations

import dataclasses

import pytest

from cofitune.configuration.checks import reuse_errors
from cofitune.handoff.region_file import ReusedRegion, family_error, read_region, region_manifest
from cofitune.infra import io
from cofitune.infra.io import DataError
from tests.unit.handoff.test_modelcard import final_model


def _write(folder, **changes):
    final = dataclasses.replace(final_model(), model_type="llama", n_layers=8)
    manifest = {**region_manifest(final), **changes}
    io.write_json(folder / "final" / "region.json", manifest)
    return folder


def test_what_a_final_model_writes_reads_back_as_its_region(tmp_path):
    folder = _write(tmp_path)
    file = folder / "final" / "region.json"
    expected = ReusedRegion((0.5, 0.75), "ffn", "llama", str(file), "0.5-0.75_ffn_softmask", "org/instruct-model", 8)
    assert read_region(folder) == read_region(folder / "final") == read_region(file) == expected  # results folder, final model, file
    assert expected.describe() == (f"reused (search.reuse) from {file}: 0.5-0.75_ffn_softmask, searched on org/instruct-model "
                                   "(8 layers, llama)")


@pytest.mark.parametrize(("changes", "message"), [
    ({"version": 1}, "region file version 1, this cofitune reads 2"),
    ({"record": "other"}, "not a cofitune region file"),
    ({"layer_range": "middle"}, "a broken region file (ValueError: layer range 'middle'"),
])
def test_a_region_file_of_another_version_or_kind_is_refused_naming_it(tmp_path, changes, message):
    _write(tmp_path, **changes)
    with pytest.raises(DataError, match=rf"{tmp_path / 'final' / 'region.json'}: .*{message}".replace("(", r"\(").replace(")", r"\)")):
        read_region(tmp_path)


def test_a_folder_without_a_region_file_is_refused(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}: holds neither final/region.json \(a results folder\) nor region.json"):
        read_region(tmp_path)


def test_another_family_is_refused_and_an_unknown_one_left_to_the_stage():
    region = ReusedRegion((0.5, 0.75), "ffn", "llama", "r.json", "c", "org/m", 8)
    assert family_error(region, "llama") is None and family_error(region, None) is None
    assert family_error(region, "gpt2").startswith("search.reuse: the region in r.json was searched on a 'llama' model (org/m); "
                                                   "this run's model is 'gpt2'")


def test_the_preflight_reads_the_region_and_the_models_family(tmp_path):
    _write(tmp_path)
    config = {"model": {"name_or_path": "builtin:tiny-llama"}, "search": {"reuse": str(tmp_path)}}
    assert reuse_errors(config) == ([], [])
    errors, _ = reuse_errors({**config, "model": {"name_or_path": "builtin:tiny-gpt2"}})
    assert len(errors) == 1 and "this run's model is 'gpt2'" in errors[0]
    errors, _ = reuse_errors({**config, "search": {"reuse": str(tmp_path / "missing")}})
    assert errors == [f"search.reuse: {tmp_path / 'missing'}: not found: give a results folder, a final model's folder or its region.json"]
    _write(tmp_path, module_set="attn2")
    assert reuse_errors(config)[0] == ["search.reuse: the region's module set 'attn2' is not one this config knows (module_sets)"]
    assert reuse_errors({**config, "module_sets": {"attn2": ["q", "o"]}}) == ([], [])
    assert reuse_errors({"model": config["model"], "search": {}}) == ([], [])
