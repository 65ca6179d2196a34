"""Sharded training with PyTorch's FSDP2 (`fully_shard`), applied here as torchtune does.

accelerate only launches the processes (it runs FSDP neither on CPU nor with frozen and trainable
tensors in one unit the way we need); applying `fully_shard` ourselves lets one code path run on
CPU with gloo (the tests) and on GPUs with NCCL. Every decoder layer is one unit, the rest of the
model (embeddings, final norm, head, tied or not) the root unit; frozen and trainable tensors share
units. A sharded parameter, its gradient and its AdamW moments are DTensors: each process holds a
block of them along the dimension of the placement (dim 0 unless `shard_placement_fn` said
otherwise), so per-unit logic (the soft-mask) must ask a tensor where its block lies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from cofitune.models import regions

log = logging.getLogger(__name__)
MODES = ("none", "fsdp")


@dataclass(frozen=True)
class ShardingSettings:
    mode: str = "none"  # none: every process holds the whole model (one process, or DDP); fsdp: FSDP2
    activation_checkpointing: bool = False  # recompute each layer's activations in the backward pass
    cpu_offload: bool = False  # keep parameters, gradients and optimizer state in CPU memory

    @classmethod
    def from_config(cls, training: dict) -> ShardingSettings:
        settings = cls(training.get("sharding", "none"), bool(training.get("activation_checkpointing", False)),
                       bool(training.get("cpu_offload", False)))
        if settings.mode not in MODES:
            raise ValueError(f"training.sharding must be one of {MODES}, got {settings.mode!r}")
        return settings


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def shard_model(model: nn.Module, settings: ShardingSettings, device_type: str, mixed_precision: str = "no") -> nn.Module:
    """Apply FSDP2 in place: each decoder layer a unit, then the root; returns the model."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    if not dist.is_initialized():
        raise RuntimeError("training.sharding: fsdp needs a process group: launch with accelerate launch or torchrun")
    if settings.cpu_offload and device_type == "cpu":
        raise ValueError("training.cpu_offload moves GPU state to host memory; on CPU everything is there already: set it to false")
    mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    # bf16 compute and parameters, fp32 gradient reduction (and fp32 master weights and AdamW state)
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if mixed_precision == "bf16" else MixedPrecisionPolicy()
    offload = CPUOffloadPolicy() if settings.cpu_offload else OffloadPolicy()
    if settings.activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps the transformers model
    for layer in regions.decoder_layers(inner):
        fully_shard(layer, mesh=mesh, mp_policy=policy, offload_policy=offload)
    fully_shard(model, mesh=mesh, mp_policy=policy, offload_policy=offload)
    return model


def materialise(model: nn.Module, model_dir, device: str) -> None:
    """Fill a model built on the meta device and sharded: process 0 loads the weights (through
    transformers, which knows each family's checkpoint names) and each process receives only its
    shards, so a node holds one host copy instead of one per process; buffers that no checkpoint
    holds (rotary frequencies) are rebuilt from the config."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from cofitune.models.modeling import load_prepared

    model.to_empty(device=device)
    full = load_prepared(model_dir)[0].state_dict() if dist.get_rank() == 0 else {}
    if dist.get_rank() == 0:
        missing = sorted(set(model.state_dict()) - set(full) - _tied_names(model))
        if missing:
            raise ValueError(f"{model_dir}: no weights for {missing[:5]}")
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False))
    log.info("weights loaded by process 0 and sent out in shards (%d processes)", dist.get_world_size())
    for module in model.modules():
        persistent = set(module.state_dict(keep_vars=True))
        volatile = [name for name, _ in module.named_buffers(recurse=False) if name not in persistent]
        if volatile:
            fresh = type(module)(config=model.config)  # e.g. LlamaRotaryEmbedding(config)
            with torch.no_grad():
                for name in volatile:
                    getattr(module, name).copy_(getattr(fresh, name))


def _tied_names(model: nn.Module) -> set[str]:
    """Names under which a parameter appears a second time (a tied output head)."""
    seen, tied = {}, set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            tied.add(name)
        seen.setdefault(id(param), name)
    return tied


def block_indices(size: int, parts: int, index: int) -> torch.Tensor:
    """The indices along a dimension of `size` that part `index` of `parts` holds (torch.chunk's
    split, which DTensor's Shard placement and FSDP2 use: ceil(size/parts) each, the last ones short
    or empty)."""
    chunks = torch.arange(size).chunk(parts)
    return chunks[index] if index < len(chunks) else torch.arange(0)


def local_block(full: torch.Tensor, like) -> torch.Tensor:
    """The block of `full` (a tensor of `like`'s global shape, or broadcastable to it with size-1
    dimensions) that this process's part of the DTensor `like` covers."""
    from torch.distributed.tensor import Shard

    block = full
    for mesh_dim, placement in enumerate(like.placements):
        if isinstance(placement, Shard) and full.shape[placement.dim] != 1:
            rows = block_indices(like.shape[placement.dim], like.device_mesh.size(mesh_dim), like.device_mesh.get_local_rank(mesh_dim))
            block = block.index_select(placement.dim, rows.to(block.device))
    return block


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor (gathered from every process when sharded; a collective then)."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def distribute_like(full: torch.Tensor, like: torch.Tensor, keep_dtype: bool = False) -> torch.Tensor:
    """`full` laid out as `like` (a DTensor with the same global shape: every process keeps its
    block), in `like`'s dtype unless `keep_dtype` (e.g. a boolean mask)."""
    from torch.distributed.tensor import DTensor

    if not isinstance(like, DTensor):
        return full
    local = local_block(full.to(like.device, full.dtype if keep_dtype else like.dtype), like)
    return DTensor.from_local(local.contiguous(), like.device_mesh, like.placements, shape=like.shape, stride=like.stride())
