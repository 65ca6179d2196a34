"""The region in other trainers' formats selects exactly the region's tensors, checked in each
library's own terms: axolotl's pattern semantics, PEFT's own LoRA wrapping, torchtune's names."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from peft import LoraConfig, get_peft_model

from cofitune.handoff.exports import axolotl_patterns, export_region
from cofitune.models import regions

REGIONS = [((0.25, 0.75), "ffn"), ((0.0, 1.0), "mha"), ((0.5, 1.0), "mha+ffn"), ((0.5, 0.75), "all")]


def axolotl_unfrozen(patterns, names):
    """axolotl's documented semantics: a '.' not followed by '+' is a literal dot; re.match; any pattern unfreezes."""
    compiled = [re.compile(re.sub(r"\.(?!\+)", "\\\\.", p)) for p in patterns]
    return [n for n in names if any(c.match(n) for c in compiled)]


def lora_wrapped(model, config):
    """(layer index, path inside the layer) of every module PEFT puts a LoRA adapter on."""
    family = regions.family_of(model)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(**config))
    found = set()
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and name.endswith(tuple(config["target_modules"])):
            match = re.search(rf"{re.escape(family.layers_path)}\.(\d+)\.(.+)$", name)
            found.add((int(match.group(1)), match.group(2)))
    return found


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_gpt2", "tiny_neox"])
@pytest.mark.parametrize(("layer_range", "module_set"), REGIONS)
def test_every_export_selects_exactly_the_region(family, layer_range, module_set, request):
    model, _ = request.getfixturevalue(family)
    names = regions.select_parameters(model, layer_range, module_set)
    export = export_region(model, "x", names, softmask=True)
    all_names = [n for n, _ in model.named_parameters()]
    assert export.parameter_names == [n for n in all_names if n in set(names)]
    assert axolotl_unfrozen(export.axolotl_unfrozen, all_names) == export.parameter_names
    matrices = {(int(m.group(1)), m.group(2)) for n in names
                if (m := re.fullmatch(rf"{re.escape(regions.family_of(model).layers_path)}\.(\d+)\.(.+)\.weight", n))
                and type(model.get_submodule(n.removesuffix(".weight"))).__name__ in ("Linear", "Conv1D")}
    assert lora_wrapped(model, export.peft_lora) == matrices
    assert export.peft_lora["fan_in_fan_out"] == (family == "tiny_gpt2")  # Conv1D's (in, out) layout, said up front
    assert any("fine level is not expressible" in note for note in export.notes)
    if module_set == "all" or family == "tiny_gpt2":  # norms or biases in the region: LoRA leaves them out, and says so
        assert any("Not adapted" in note for note in export.notes)


def test_torchtune_names_are_llamas_own():
    from cofitune.models.modeling import build_tiny_model

    model, _ = build_tiny_model("tiny-llama", seed=0)
    names = [*regions.select_parameters(model, (0.5, 1.0), "mha+ffn"), "model.norm.weight"]
    export = export_region(model, "x", names, softmask=False)
    assert set(export.torchtune_names) == {
        "norm.scale", *(f"layers.{i}.{m}" for i in (2, 3) for m in ("attn.q_proj.weight", "attn.k_proj.weight",
                                                                       "attn.v_proj.weight", "mlp.w3.weight", "mlp.w2.weight"))}
    gpt2, _ = build_tiny_model("tiny-gpt2", seed=0)
    assert export_region(gpt2, "x", regions.select_parameters(gpt2, (0.5, 1.0), "ffn"), False).torchtune_names is None


def test_patterns_are_compact_and_anchored():
    names = [f"model.layers.{i}.mlp.up_proj.weight" for i in (10, 11, 12)] + ["lm_head.weight"]
    assert axolotl_patterns(names) == ["^lm_head.weight$", "^model.layers.(10|11|12).mlp.up_proj.weight$"]
    assert axolotl_unfrozen(axolotl_patterns(names), [*names, "model.layers.1.mlp.up_proj.weight", "model.layers.100.mlp.up_proj.weight"]) == names


def test_unknown_tensors_are_refused(tiny_llama):
    with pytest.raises(KeyError, match="not parameters of this model"):
        export_region(tiny_llama[0], "x", ["model.layers.99.mlp.up_proj.weight"], softmask=False)


def test_the_written_files_reload_in_their_libraries(tmp_path):
    from cofitune.infra import io
    from cofitune.infra.records import TrainRecord
    from cofitune.models.modeling import build_tiny_model, save_model
    from cofitune.stages.deliver import export_region as write_export
    from tests.unit.handoff.test_modelcard import final_model

    model, tokenizer = build_tiny_model("tiny-llama", seed=0)
    save_model(model, tokenizer, tmp_path / "base")
    names = regions.select_parameters(model, (0.5, 1.0), "ffn")
    io.save_tensors(tmp_path / "trained.safetensors", {n: model.get_parameter(n).detach() for n in names})
    record: TrainRecord = final_model().train
    record.write(tmp_path / "train_metrics.json")
    write_export(model_dir=tmp_path / "base", trained_file=tmp_path / "trained.safetensors", train_metrics=tmp_path / "train_metrics.json",
                 candidate="c", out_dir=tmp_path / "export")
    out = tmp_path / "export"
    assert axolotl_unfrozen(yaml.safe_load((out / "axolotl.yaml").read_text())["unfrozen_parameters"],
                            [n for n, _ in model.named_parameters()]) == sorted(names, key=[n for n, _ in model.named_parameters()].index)
    config = LoraConfig(**json.loads((out / "peft_lora_config.json").read_text()))
    assert config.layers_to_transform == [2, 3] and set(config.target_modules) == {"mlp.up_proj", "mlp.down_proj"}
    assert len(json.loads((out / "torchtune_params.json").read_text())) == len(names)
    assert "What these cannot express" in (out / "README.md").read_text()
