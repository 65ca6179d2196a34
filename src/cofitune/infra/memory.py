"""A memory model of training: bytes per device for a model shape, what is trained, precision,
sharding degree, CPU offload and batch. Pure arithmetic, so a plan costs nothing to make.

Per device, with P parameters of which T are trained, N processes sharing a sharded model:
  parameters   fp32 master weights, 4 P (4 P / N sharded); with bf16 FSDP2 also the bf16 copy of
               the units being computed (two decoder layers: the current and the prefetched one);
               unsharded bf16 runs use autocast, which keeps bf16 copies of the same size transiently
  gradients    fp32, 4 T (4 T / N sharded: FSDP2 reduce-scatters and keeps only this shard)
  optimizer    AdamW's two fp32 moments, 8 T (8 T / N sharded)
  activations  what backward needs, only from the lowest trained layer up (autograd stores nothing
               below it): per layer and token ~ 34 h bytes in bf16 (68 h in fp32), the logits of
               the target positions in fp32; with activation checkpointing one input per layer
               (2 h bytes) plus one layer's full activations
  offload      parameters, gradients and optimizer state live in host memory instead (FSDP2's
               CPUOffloadPolicy); the device keeps the computed units and the activations.
The activation term is the rough part (it follows Korthikanti et al. 2022 for a bf16 transformer
with fused attention); the static terms are exact for the tensors they count (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class ModelShape:
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool = False

    def role_params(self) -> dict[str, int]:
        """Parameters of one decoder layer per role (Llama layout: no biases)."""
        kv = self.kv_heads * (self.hidden // self.heads)
        h, i = self.hidden, self.intermediate
        return {"q": h * h, "k": h * kv, "v": h * kv, "o": h * h, "gate": h * i, "up": h * i, "down": i * h, "norms": 2 * h}

    def layer_params(self) -> int:
        return sum(self.role_params().values())

    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * self.layer_params() + self.hidden  # + final norm


# Public architectures (config.json values); random weights of these shapes need no download.
SHAPES = {
    "llama-1b": ModelShape("Llama-3.2-1B", 16, 2048, 8192, 32, 8, 128256, tied=True),
    "llama-8b": ModelShape("Llama-3.1-8B", 32, 4096, 14336, 32, 8, 128256),
    "llama-13b": ModelShape("Llama-2-13B", 40, 5120, 13824, 40, 40, 32000),
    "llama-70b": ModelShape("Llama-3.1-70B", 80, 8192, 28672, 64, 8, 128256),
}


@dataclass(frozen=True)
class Trained:
    """What a method trains: every parameter (full SFT) or roles in a layer range."""

    name: str
    layer_range: tuple[float, float] = (0.0, 1.0)
    roles: tuple[str, ...] = ()  # empty: everything (embeddings and head included)

    def layers(self, shape: ModelShape) -> range:
        return range(math.floor(self.layer_range[0] * shape.layers), math.floor(self.layer_range[1] * shape.layers))

    def params(self, shape: ModelShape) -> int:
        if not self.roles:
            return shape.params()
        per_layer = sum(shape.role_params()[r] for r in self.roles)
        return per_layer * len(self.layers(shape))

    def lowest_layer(self, shape: ModelShape) -> int:
        return 0 if not self.roles else self.layers(shape).start


FULL_SFT = Trained("full SFT")
FFN_Q2 = Trained("ffn [.25,.5)", (0.25, 0.5), ("up", "down"))


@dataclass(frozen=True)
class Plan:
    parameters: float
    gradients: float
    optimizer: float
    activations: float
    host: float  # what offload moves to host memory, per process

    @property
    def total(self) -> float:
        return self.parameters + self.gradients + self.optimizer + self.activations


def plan(
    shape: ModelShape, trained: Trained, devices: int = 1, sharded: bool = False, precision: str = "bf16", offload: bool = False,
    micro_batch: int = 1, seq_len: int = 2048, target_tokens: int | None = None, activation_checkpointing: bool = False,
) -> Plan:
    """Bytes per device (see the module docstring); `target_tokens` per sequence default to seq_len."""
    share = devices if sharded else 1
    n_params, n_trained = shape.params(), trained.params(shape)
    master = 4 * n_params / share
    compute_copies = 2 * 2 * shape.layer_params() if precision == "bf16" else 0
    gradients, optimizer = 4 * n_trained / share, 8 * n_trained / share
    host = 0.0
    if offload:
        host, master, gradients, optimizer = master + gradients + optimizer, 0.0, 0.0, 0.0
    tokens = micro_batch * seq_len
    per_token_layer = (34 if precision == "bf16" else 68) * shape.hidden
    stored_layers = shape.layers - trained.lowest_layer(shape)
    if activation_checkpointing:
        activations = tokens * (stored_layers * 2 * shape.hidden + per_token_layer)
    else:
        activations = tokens * stored_layers * per_token_layer
    activations += micro_batch * (target_tokens if target_tokens is not None else seq_len) * shape.vocab * 4
    return Plan(master + compute_copies, gradients, optimizer, activations, host)


def memory_table(shapes: list[ModelShape], device_counts: list[int], trained: list[Trained], device_gib: float = 80.0, **kwargs) -> str:
    """Markdown: GiB per device (FSDP2 over the devices, bf16), and whether it fits, with and without offload."""
    lines = ["| model | trained | devices | params GiB | grads GiB | AdamW GiB | activations GiB | total GiB | fits | with CPU offload |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for shape in shapes:
        for what in trained:
            for n in device_counts:
                p = plan(shape, what, devices=n, sharded=n > 1, **kwargs)
                off = plan(shape, what, devices=n, sharded=n > 1, offload=True, **kwargs)
                fits = "yes" if p.total <= device_gib * GIB else "no"
                fits_off = f"{off.total / GIB:.1f} GiB (+{off.host / GIB:.0f} host)" + (" yes" if off.total <= device_gib * GIB else " no")
                lines.append(f"| {shape.name} | {what.name} ({what.params(shape) / shape.params():.1%}) | {n} | {p.parameters / GIB:.1f} | "
                             f"{p.gradients / GIB:.1f} | {p.optimizer / GIB:.1f} | {p.activations / GIB:.1f} | {p.total / GIB:.1f} | {fits} | {fits_off} |")
    return "\n".join(lines)
