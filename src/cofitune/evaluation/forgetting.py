"""A cheap forgetting signal: how far a fine-tuned model's next-token distributions moved from the
base model's on general text. No labels and no generation: one forward pass of each model.

KL(base || model) per token is sum_v p_base(v) (log p_base(v) - log p_model(v)), averaged over every
real (non-padding) token of the batches. It is 0 for an unchanged model and grows as the model's
predictions drift where the base model was confident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def mean_token_kl(base: nn.Module, model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], device: str = "cpu") -> tuple[float, int]:
    """(mean KL(base || model) in nats per token, number of tokens) over the batches."""
    total, tokens = 0.0, 0
    for batch in batches:
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        log_p = F.log_softmax(base(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        log_q = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        per_token = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
        total += float(per_token[mask.bool()].sum())
        tokens += int(mask.sum())
    if tokens == 0:
        raise ValueError("no tokens to compare the models on")
    return total / tokens, tokens
