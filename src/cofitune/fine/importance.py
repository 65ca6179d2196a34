"""Fine level: versatility importance of heads and neurons (METHOD.md section 4, after DAS).

All-ones gates with requires_grad sit at three sites of every layer, attached with forward hooks
(no model code is copied, so every family in `cofitune.models.regions` works):
  head          each attention head's output, at the input of the attention output projection;
  intermediate  the FFN intermediate activation, at the input of the down projection;
  output        the FFN output, at the output of the down projection.
Each batch runs twice in train mode with dropout p at the gate sites; the loss is
T * KL(softmax(z2) || softmax(z1)) summed over non-padding positions. Gate gradients are taken
per batch (so nothing leaks between batches), accumulated (signed, or abs), and divided by the
number of tokens. Model weights never change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cofitune.models import regions

UNIT_TYPES = ("head", "intermediate", "output")


@dataclass(frozen=True)
class ImportanceSettings:
    dropout: float = 0.003  # the reference's p; without noise the KL is identically zero
    temperature: float = 0.1
    accumulate: str = "signed"  # or "abs"
    batch_size: int = 8


def io_dims(module: nn.Module) -> tuple[int, int]:
    """(input features, output features) of a Linear or GPT-2 Conv1D."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = module.weight  # Conv1D stores (in, out)
    return weight.shape[0], weight.shape[1]


def n_heads(model: nn.Module) -> int:
    return int(model.config.num_attention_heads)


def make_gates(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """All-ones gates per unit type and layer, shaped like the units they weigh, on the model's device."""
    device = next(model.parameters()).device
    gates: dict[str, list[torch.Tensor]] = {t: [] for t in UNIT_TYPES}
    for layer in range(len(regions.decoder_layers(model))):
        down_in, down_out = io_dims(regions.role_module(model, layer, "down"))
        for unit_type, size in zip(UNIT_TYPES, (n_heads(model), down_in, down_out), strict=True):
            gates[unit_type].append(torch.ones(size, device=device, requires_grad=True))
    return gates


@contextlib.contextmanager
def gates_attached(model: nn.Module, gates: Mapping[str, Sequence[torch.Tensor]], dropout: float) -> Iterator[None]:
    """Multiply the activations at the three sites by the gates (then dropout); remove on exit."""
    heads = n_heads(model)
    handles = []

    def head_site(gate: torch.Tensor) -> Callable:
        def hook(_module, args):
            x = args[0]
            gated = (x.view(*x.shape[:-1], heads, -1) * gate.to(x.dtype)[:, None]).view_as(x)
            return (F.dropout(gated, dropout, training=True), *args[1:])

        return hook

    def input_site(gate: torch.Tensor) -> Callable:
        def hook(_module, args):
            return (F.dropout(args[0] * gate.to(args[0].dtype), dropout, training=True), *args[1:])

        return hook

    def output_site(gate: torch.Tensor) -> Callable:
        def hook(_module, _args, output):
            return F.dropout(output * gate.to(output.dtype), dropout, training=True)

        return hook

    try:
        for layer in range(len(regions.decoder_layers(model))):
            o_module = regions.role_module(model, layer, "o")
            down = regions.role_module(model, layer, "down")
            handles.append(o_module.register_forward_pre_hook(head_site(gates["head"][layer])))
            handles.append(down.register_forward_pre_hook(input_site(gates["intermediate"][layer])))
            handles.append(down.register_forward_hook(output_site(gates["output"][layer])))
        yield
    finally:
        for handle in handles:
            handle.remove()


def kl_loss(z1: torch.Tensor, z2: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """T * KL(softmax(z2) || softmax(z1)), summed over the positions where mask is 1."""
    per_position = F.kl_div(F.log_softmax(z1.float(), -1), F.log_softmax(z2.float(), -1), log_target=True, reduction="none").sum(-1)
    return temperature * (per_position * mask).sum()


def estimate(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    settings: ImportanceSettings,
    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> dict[str, torch.Tensor]:
    """Raw importance per unit type, shape (layers, units). `reduce` sums across processes."""
    if settings.accumulate not in ("signed", "abs"):
        raise ValueError(f"accumulate must be 'signed' or 'abs', got {settings.accumulate!r}")
    frozen = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)  # no weight gradients: only the gates need them
    was_training = model.training
    model.train()
    gates = make_gates(model)
    flat = [g for t in UNIT_TYPES for g in gates[t]]
    totals = [torch.zeros_like(g) for g in flat]
    device = flat[0].device
    n_tokens = torch.zeros((), dtype=torch.float64, device=device)
    try:
        with gates_attached(model, gates, settings.dropout):
            for batch in batches:
                ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
                weight = batch.get("weight", 1.0)  # 0: a pass that only keeps a sharded model's processes in step
                if "seed" in batch:  # the dropout noise of a batch, whichever process runs it
                    torch.manual_seed(batch["seed"])
                z1 = model(input_ids=ids, attention_mask=mask).logits
                z2 = model(input_ids=ids, attention_mask=mask).logits
                loss = kl_loss(z1, z2, mask, settings.temperature) * weight
                if loss.requires_grad:
                    grads = torch.autograd.grad(loss, flat, allow_unused=True)
                    for total, grad in zip(totals, grads, strict=True):
                        if grad is not None:
                            total += grad.abs() if settings.accumulate == "abs" else grad
                n_tokens += mask.sum() * weight
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(frozen[name])
        model.train(was_training)
    totals = [reduce(t) for t in totals]
    n_tokens = reduce(n_tokens)
    if n_tokens == 0:
        raise ValueError("importance data has no tokens")
    raw, start = {}, 0
    for unit_type in UNIT_TYPES:
        count = len(gates[unit_type])
        raw[unit_type] = (torch.stack(totals[start : start + count]) / n_tokens).float().cpu()
        start += count
    return raw


def normalise(raw: torch.Tensor) -> torch.Tensor:
    """Per layer (row): |tanh((v - mean) / std)|, values in [0, 1). A constant row maps to 0."""
    mean = raw.mean(dim=-1, keepdim=True)
    std = raw.std(dim=-1, keepdim=True)
    z = torch.where(std > 0, (raw - mean) / std.clamp_min(torch.finfo(raw.dtype).tiny), torch.zeros_like(raw))
    return torch.tanh(z).abs().clamp_max(torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)).item())


def combine(sources: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Several importance sources (normalised) combine by element-wise max."""
    if not sources:
        raise ValueError("no importance sources to combine")
    return {t: torch.stack([s[t] for s in sources]).amax(dim=0) for t in UNIT_TYPES}


def pooled(halves: Sequence[tuple[Mapping[str, torch.Tensor], float]]) -> dict[str, torch.Tensor]:
    """The raw importance of all the data from that of disjoint parts, each weighted by its tokens:
    raw is a per-token mean, so the whole is the token-weighted mean of the parts."""
    total = sum(tokens for _, tokens in halves)
    return {t: sum(raw[t] * (tokens / total) for raw, tokens in halves) for t in UNIT_TYPES}


def split_half_reliability(half_a: Mapping[str, torch.Tensor], half_b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per unit type, per layer: Spearman correlation of the units' raw importance estimated on two
    disjoint halves of the data. Near 1: the ranking the soft-mask uses is signal; near 0: noise."""
    from cofitune.infra.stats import spearman

    return {t: torch.tensor([spearman(a.tolist(), b.tolist()) for a, b in zip(half_a[t], half_b[t], strict=True)])
            for t in UNIT_TYPES}
