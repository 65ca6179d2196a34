"""Run under `torchrun --nproc_per_node 2` (gloo, CPU) by tests/integration/test_fsdp.py.

  train <model_dir> <data_dir> <importance> <out_root> <specs JSON> <training JSON>
      trains each spec through the stage the workflow launches (cofitune.stages.train), sharded;
  importance <model_dir> <files JSON> <out_file>
      estimates importance through the launched stage, the model sharded (5 batches over 2 processes);
  mask-rows <out_file>
      shards a tiny model by rows (dim 0) and by columns (dim 1) and checks that every process
      scales exactly the block of gradient rows or columns it holds, with the matching factors;
  scaled-steps <out_file>
      steps ScaledAdamW (the soft-mask's step scales, MoFO's filter, both) on a model sharded by rows
      and by columns with known gradients and checks that every process ends with its block of
      what one process gets from the whole tensors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def _outputs(folder: Path) -> list[str]:
    """A training's three outputs in the workflow's layout (results/train/<id>/)."""
    return ["--trained-out", str(folder / "trained.safetensors"), "--metrics-out", str(folder / "train_metrics.json"),
            "--checkpoint-dir", str(folder / "checkpoint")]


def train(model_dir, data_dir, importance, out_root, specs, training) -> None:
    from cofitune.stages.train import main

    for spec in json.loads(specs):
        args = ["--model-dir", model_dir, "--data-dir", data_dir, "--candidate", json.dumps(spec), "--training", training,
                "--seed", "3", *_outputs(Path(out_root) / spec["id"])]
        if spec.get("softmask"):
            args += ["--importance", importance, "--softmask", json.dumps({"parts": ["attention", "input_projection", "output_projection"]})]
        main(args)


def importance(model_dir, files, out_file) -> None:
    from cofitune.stages.importance import main

    settings = {"max_examples": 20, "batch_size": 4, "max_length": 64, "dropout": 0.05, "temperature": 0.1, "accumulate": "signed"}
    main(["--model-dir", model_dir, "--files", files, "--settings", json.dumps(settings), "--seed", "3", "--out", out_file,
          "--sharding", "fsdp"])


def mask_rows(out_file: str) -> None:
    import torch.distributed as dist
    from accelerate import Accelerator
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset  # torch's own oracle

    from cofitune.fine import masking
    from cofitune.models import regions
    from cofitune.models.modeling import build_tiny_model

    Accelerator(cpu=True)
    checked = 0
    for dim in (0, 1):
        model, _ = build_tiny_model("tiny-llama", seed=0)
        names = regions.select_parameters(model, (0.0, 1.0), "mha+ffn")
        generator = torch.Generator().manual_seed(1)
        imp = {"head": torch.rand(4, 4, generator=generator), "intermediate": torch.rand(4, 128, generator=generator),
               "output": torch.rand(4, 64, generator=generator)}
        full_scales = masking.row_scales(model, imp, names, masking.PARTS)
        full_grads = {n: torch.randn(p.shape, generator=generator) for n, p in model.named_parameters() if n in full_scales}
        mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        place = lambda p, d=dim: Shard(d if p.ndim == 2 else 0)  # noqa: E731
        for layer in regions.decoder_layers(model):
            fully_shard(layer, mesh=mesh, shard_placement_fn=place)
        fully_shard(model, mesh=mesh, shard_placement_fn=place)
        params = dict(model.named_parameters())
        for name, grad in full_grads.items():
            params[name].grad = DTensor.from_local(
                _block(grad, params[name]), params[name].device_mesh, params[name].placements, shape=grad.shape, stride=grad.stride())
        masking.SoftMask(model, full_scales)(model)
        for name, grad in full_grads.items():
            local = params[name].grad.to_local()
            shape, offset = compute_local_shape_and_global_offset(grad.shape, params[name].device_mesh, params[name].placements)
            index = tuple(slice(o, o + s) for o, s in zip(offset, shape, strict=True))
            expected = grad * full_scales[name].reshape(-1, *([1] * (grad.ndim - 1)))  # Linear: output units are rows
            torch.testing.assert_close(local, expected[index], rtol=0, atol=0, msg=f"{name} shard {dim}")
            assert params[name].grad.placements[0] == Shard(dim if grad.ndim == 2 else 0)
            checked += 1
    if dist.get_rank() == 0:
        Path(out_file).write_text(json.dumps({"checked": checked, "world": dist.get_world_size()}))


def scaled_steps(out_file: str) -> None:
    """ScaledAdamW sharded by rows and by columns ends bitwise equal to one process: the soft-mask's
    step scales alone, MoFO alone, and both composed."""
    import torch.distributed as dist
    from accelerate import Accelerator
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor, Shard

    from cofitune.fine import masking
    from cofitune.models import regions
    from cofitune.models.modeling import build_tiny_model
    from cofitune.training.mofo import entries_to_update
    from cofitune.training.optim import ScaledAdamW

    Accelerator(cpu=True)
    checked = {}
    for case, fraction, masked in (("mask", 1.0, True), ("mofo", 0.15, False), ("mofo+mask", 0.15, True)):
        checked[case] = 0
        for dim in (0, 1):
            single, _ = build_tiny_model("tiny-llama", seed=0)
            sharded, _ = build_tiny_model("tiny-llama", seed=0)
            mesh = init_device_mesh("cpu", (dist.get_world_size(),))
            place = lambda p, d=dim: Shard(d if p.ndim == 2 else 0)  # noqa: E731
            fully_shard(sharded, mesh=mesh, shard_placement_fn=place)
            start = {n: p.detach().clone() for n, p in single.named_parameters()}
            generator = torch.Generator().manual_seed(1)  # the same factors and gradients on every process
            imp = {"head": torch.rand(4, 4, generator=generator), "intermediate": torch.rand(4, 128, generator=generator),
                   "output": torch.rand(4, 64, generator=generator)}
            names = regions.select_parameters(single, (0.0, 1.0), "mha+ffn")
            scales = masking.row_scales(single, imp, names, masking.PARTS) if masked else {}
            optimizers = [ScaledAdamW(m.parameters(), lr=1e-2, weight_decay=0.1, fraction=fraction,
                                      step_scales=masking.SoftMask(m, scales).step_scales() if masked else None)
                          for m in (single, sharded)]
            for _ in range(3):
                grads = {n: torch.randn(p.shape, generator=generator) for n, p in single.named_parameters()}
                for name, param in single.named_parameters():
                    param.grad = grads[name].clone()
                for name, param in sharded.named_parameters():
                    param.grad = DTensor.from_local(_block(grads[name], param), param.device_mesh, param.placements,
                                                    shape=param.shape, stride=param.stride())
                for optimizer in optimizers:
                    optimizer.step()
            for (name, whole), (_, part) in zip(single.named_parameters(), sharded.named_parameters(), strict=True):
                gathered = part.full_tensor()
                assert torch.equal(gathered, whole.detach()), f"{case}, {name} sharded by dim {dim}: not what one process gets"
                if fraction < 1.0:
                    assert int((gathered != start[name]).sum()) <= 3 * entries_to_update(whole.numel(), fraction), name
                checked[case] += 1
    if dist.get_rank() == 0:
        Path(out_file).write_text(json.dumps({"checked": checked, "world": dist.get_world_size()}))


def _block(full: torch.Tensor, like) -> torch.Tensor:
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(full.shape, like.device_mesh, like.placements)
    return full[tuple(slice(o, o + s) for o, s in zip(offset, shape, strict=True))].clone()  # own storage: masking is in place


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {"train": train, "importance": importance, "mask-rows": mask_rows, "scaled-steps": scaled_steps}[command](*rest)
