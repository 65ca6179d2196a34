"""The SFT loss: cross-entropy summed over the target tokens, computed where it costs least.

Two savings over `F.cross_entropy(model(...).logits, ...)`, neither of which changes a bit of the
loss or of the gradient:
- only the positions that predict a target token go through the output layer (`logits_to_keep`):
  with a response-only loss on short answers that is a few percent of the sequence;
- the log-softmax and its gradient are written into the logits' own buffer. The reference path
  allocates three more tensors of the logits' size per micro-batch (the log-probabilities, the
  gradient reaching them, the gradient of the logits); this one allocates none (a block buffer of
  a few MB). At a vocabulary of 49,152 and 1,024 target tokens each is 200 MB, and on a CPU the
  fresh pages cost more than the arithmetic (`bench/loop_vs_trainer.py`); on a GPU it would be
  peak memory (8 GB each at 16k tokens and a 128k vocabulary). It runs the same ATen kernels as
  `F.cross_entropy` on the same values, so the results are equal bit for bit (tested on CPU; on
  other devices `F.cross_entropy` itself until the same test has passed there: IN_PLACE_DEVICES).
"""

from __future__ import annotations

import inspect
from collections import deque

import torch
import torch.nn.functional as F
from torch import nn

from cofitune.data.sft import IGNORE_INDEX

# Where the kernels' in-place use is proven bit for bit by the tests. On CUDA the same test exists
# (tests/unit/training/test_loss.py, run by `bash bench/gpu.sh tests`) but has not run yet: there
# the loss is F.cross_entropy until it has passed.
IN_PLACE_DEVICES = frozenset({"cpu"})
# Entries of the backward's block buffer: on a CPU 8 MB, one buffer reused for every block, so no
# fresh pages (what costs there; the block size itself was not tuned); on an accelerator large
# enough to keep the kernel launches few.
CHUNK_ELEMENTS = {"cpu": 2**21, "cuda": 2**25}


def token_loss_sum(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy summed (not averaged) over the target tokens, in float32."""
    targets = batch["labels"][:, 1:]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if accepts_logits_to_keep(model):
        # Position t predicts token t + 1; keep a position if any row has a target there.
        keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
        logits = model(**inputs, logits_to_keep=keep).logits
        targets = targets[:, keep]
    else:
        logits = model(**inputs).logits[:, :-1]
    return summed_cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def accepts_logits_to_keep(model: nn.Module) -> bool:
    """Whether the model's forward can restrict its logits to given positions (transformers >= 4.50)."""
    inner = getattr(model, "module", model)  # DDP wrapper
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")`, equal bit for bit,
    for 2-D float32 logits that nothing reads after this call: their buffer may be overwritten (it is
    copied instead when the graph that made them saved it, or when they are a leaf)."""
    if logits.dim() != 2 or logits.dtype != torch.float32:
        raise ValueError(f"summed_cross_entropy takes 2-D float32 logits, not {tuple(logits.shape)} {logits.dtype}")
    if logits.device.type not in IN_PLACE_DEVICES:
        return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return _SummedCrossEntropy.apply(logits, targets, may_overwrite(logits))


def may_overwrite(tensor: torch.Tensor, budget: int = 32) -> bool:
    """Whether `tensor`'s memory is free to overwrite as far as autograd is concerned: it was made by an
    operation (not a leaf), and no node of the graph that made it saved a tensor sharing its storage
    (a node that saved its own output, such as `exp` or `tanh`, would need it in the backward).
    The walk visits at most `budget` nodes upstream; a storage can only be shared along the chain of
    views that leads to the operation that allocated it, which comes first. Should anything else
    hold it, autograd's version counter still refuses the backward loudly: never a wrong gradient."""
    if tensor.grad_fn is None:
        return False
    storage = tensor.untyped_storage().data_ptr()
    queue, seen = deque([tensor.grad_fn]), 0
    while queue and seen < budget:
        node = queue.popleft()
        seen += 1
        if any(saved.untyped_storage().data_ptr() == storage for saved in _saved_tensors(node)):
            return False
        queue.extend(parent for parent, _ in node.next_functions if parent is not None)
    return True


def _saved_tensors(node) -> list[torch.Tensor]:
    found = []
    for name in dir(node):
        if name.startswith("_saved_"):
            try:
                value = getattr(node, name)
            except RuntimeError:  # freed after a backward
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            found.extend(v for v in values if isinstance(v, torch.Tensor))
    return found


class _SummedCrossEntropy(torch.autograd.Function):
    """Log-softmax in place, then `nll_loss`. The backward builds the gradient that `nll_loss` would
    pass back, a block of rows at a time in one small buffer, and runs the log-softmax backward
    kernel on each block, writing the logits' gradient over the log-probabilities."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, overwrite: bool) -> torch.Tensor:
        if overwrite:
            log_probs = logits.detach()  # the same storage and version counter
            torch.log_softmax(log_probs, dim=1, out=log_probs)
        else:
            log_probs = torch.log_softmax(logits.detach(), dim=1)
        ctx.log_probs, ctx.targets = log_probs, targets
        return F.nll_loss(log_probs, targets, ignore_index=IGNORE_INDEX, reduction="sum")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        log_probs, targets = ctx.log_probs, ctx.targets
        del ctx.log_probs
        valid = (targets != IGNORE_INDEX).to(log_probs.dtype)
        reaching = (-(valid * grad)).unsqueeze(1)  # what nll_loss's backward puts at each row's target
        columns = targets.clamp_min(0).unsqueeze(1)
        rows = max(1, CHUNK_ELEMENTS.get(log_probs.device.type, CHUNK_ELEMENTS["cuda"]) // log_probs.shape[1])
        buffer = torch.empty(min(rows, len(log_probs)), log_probs.shape[1], dtype=log_probs.dtype, device=log_probs.device)
        for start in range(0, len(log_probs), rows):
            end = min(start + rows, len(log_probs))
            grad_output = buffer[: end - start].zero_()
            grad_output.scatter_(1, columns[start:end], reaching[start:end])
            part = log_probs[start:end]  # the kernel reads each entry before it writes the same one
            torch.ops.aten._log_softmax_backward_data.out(grad_output, part, 1, part.dtype, out=part)
        return log_probs, None, None
