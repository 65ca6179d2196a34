"""Spectrum-style, data-free choice of weight matrices to train: rank them by a singular-value SNR.

Spectrum (Hartford et al. 2024, arXiv 2406.06623) splits the singular values of each weight matrix at a
Marchenko-Pastur (MP) edge into signal (above) and noise (at or below), scores the matrix by
sum(signal) / sum(noise), ranks matrices *within a module type* (all q_proj against each other, all
down_proj against each other, ...) and trains the top fraction of every type (Spectrum-25, Spectrum-50).

What was verified, and where:
- From the authors' reference code (github.com/cognitivecomputations/spectrum, spectrum.py; read, not
  copied): sigma = IQR(singular values) / 1.349; edge = sigma * (1 + sqrt(beta)), beta = min/max of the
  shape; signal = values > edge, noise = values <= edge; the score is (signal / noise) / largest singular
  value; the type of a matrix is its module path after the layer index; per type the top
  int(n * percent / 100) matrices are trained. `method="reference"` reproduces this.
- From a secondary summary of the paper (the paper's own formulas could not be read here): the edge omits
  the sqrt(n) factor of the MP bound and uses the IQR instead of the standard deviation. Assumed to
  match the code above.
- Numerically (tests/unit/methods/test_spectrum.py): the reference score counts about a quarter of a pure
  Gaussian square matrix's singular values as signal (raw ratio ~0.8), is infinite for a Gaussian matrix
  of aspect ratio 4 (its IQR is small next to the bulk's location, so every value clears the edge), and the
  division by the largest singular value makes it scale dependent and *decreasing* in the strength of a
  planted low-rank signal.

Hence the default `method="mp"` keeps Spectrum's structure (edge, sum ratio, grouping, top fraction)
but uses the actual MP edge for singular values, sigma * (sqrt(n) + sqrt(m)), with sigma estimated
robustly from the median singular value against the MP median (the Gavish-Donoho approach), and no
division by the largest singular value: a pure noise matrix scores about 0, the score grows with signal
strength and does not change when the matrix is scaled or transposed. Assumptions of this estimator: the
noise is i.i.d.-like and the signal has rank below half of min(n, m) (else the median is inflated).

Fused q/k/v matrices (GPT-2's c_attn, GPT-NeoX's query_key_value) are one matrix of type "qkv": they can
only be trained or frozen whole. GPT-2's Conv1D stores weights transposed; singular values do not care.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import nn

from cofitune.models.regions import Family, family_of, select_parameters

METHODS = ("mp", "reference")
_IQR_OF_STD_NORMAL = 1.349  # IQR of N(0, 1): turns an IQR into a standard deviation (reference code)
_MP_GRID = 8193  # quadrature points for the MP median; error far below the sampling noise of a median


class RankedMatrix(NamedTuple):
    name: str  # as in model.named_parameters()
    group: str  # module type ranked against: a role ('q', 'down', ...) or 'qkv' for a fused matrix
    snr: float


# --- one matrix ---------------------------------------------------------------------------------------


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of a 2-D weight, descending, in float32 on the CPU (bf16/fp16 SVD is unsupported)."""
    if weight.ndim != 2:
        raise ValueError(f"SNR needs a 2-D weight matrix, got shape {tuple(weight.shape)}")
    return torch.linalg.svdvals(weight.detach().to(device="cpu", dtype=torch.float32))


def aspect_ratio(shape: Sequence[int]) -> float:
    """beta = min/max of the two dimensions; the only way the shape (or a transposition) enters."""
    rows, cols = shape
    return min(rows, cols) / max(rows, cols)


@lru_cache(maxsize=256)
def mp_median(beta: float) -> float:
    """Median singular value of a p x (beta*p) matrix of i.i.d. unit-variance entries, divided by sqrt(p).

    Singular values s = sqrt(lambda) with lambda MP-distributed on [(1-sqrt b)^2, (1+sqrt b)^2]; in s the
    density sqrt((hi^2 - s^2)(s^2 - lo^2)) / (pi * beta * s) stays bounded even at beta = 1.
    """
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must lie in (0, 1], got {beta}")
    lo, hi = 1.0 - math.sqrt(beta), 1.0 + math.sqrt(beta)
    edges = torch.linspace(lo, hi, _MP_GRID, dtype=torch.float64)
    mid = (edges[1:] + edges[:-1]) / 2  # midpoint rule: never evaluates the 0/0 at s = 0 when beta = 1
    density = ((hi**2 - mid**2) * (mid**2 - lo**2)).clamp(min=0.0).sqrt() / (math.pi * beta * mid)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), (density * (edges[1:] - edges[:-1])).cumsum(0)])
    cdf = cdf / cdf[-1]  # absorbs the quadrature error of the total mass
    i = int(torch.searchsorted(cdf, torch.tensor([0.5], dtype=torch.float64)))
    # linear interpolation inside the bracketing cell
    return float(edges[i - 1] + (0.5 - cdf[i - 1]) / (cdf[i] - cdf[i - 1]) * (edges[i] - edges[i - 1]))


def mp_edge(values: torch.Tensor, shape: Sequence[int]) -> float:
    """Upper MP edge sigma*(sqrt(p)+sqrt(q)) with sigma = median(s) / (sqrt(p) * mp_median(beta)).

    sqrt(p) cancels: edge = median(s) * (1 + sqrt(beta)) / mp_median(beta).
    """
    beta = aspect_ratio(shape)
    return float(torch.quantile(values, 0.5)) * (1.0 + math.sqrt(beta)) / mp_median(beta)


def reference_edge(values: torch.Tensor, shape: Sequence[int]) -> float:
    """The reference code's edge: IQR(s)/1.349 * (1 + sqrt(beta)), no sqrt(n) factor."""
    q25, q75 = torch.quantile(values, torch.tensor([0.25, 0.75], dtype=values.dtype)).tolist()
    return (q75 - q25) / _IQR_OF_STD_NORMAL * (1.0 + math.sqrt(aspect_ratio(shape)))


def signal_to_noise(values: torch.Tensor, edge: float) -> float:
    """sum(values > edge) / sum(values <= edge); 0 without signal, inf with signal but zero noise."""
    signal = float(values[values > edge].sum())
    noise = float(values[values <= edge].sum())
    if signal == 0.0:
        return 0.0
    return math.inf if noise == 0.0 else signal / noise


def snr(weight: torch.Tensor, method: str = "mp") -> float:
    """Spectrum's signal-to-noise ratio of one 2-D weight matrix (see the module docstring for `method`)."""
    values = singular_values(weight)
    if method == "mp":
        return signal_to_noise(values, mp_edge(values, weight.shape))
    if method == "reference":
        largest = float(values[0])
        ratio = signal_to_noise(values, reference_edge(values, weight.shape))
        return 0.0 if largest == 0.0 else ratio / largest
    raise ValueError(f"unknown SNR method {method!r}; known: {', '.join(METHODS)}")


# --- a model ------------------------------------------------------------------------------------------


def group_label(roles: Sequence[str]) -> str:
    """Name of a module type from the roles living in it: 'q', 'down', or 'qkv' for a fused matrix."""
    return "qkv" if tuple(roles) == ("q", "k", "v") else "+".join(roles)


def role_groups(family: Family, roles: Sequence[str] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(label, roles) per distinct module path, in the family's role order.

    A fused module keeps all its roles even if only one was asked for: it trains or freezes as a whole.
    """
    wanted = list(family.roles) if roles is None else list(roles)
    unknown = [r for r in wanted if r not in family.roles]
    if unknown:
        raise ValueError(f"{family.name} models have no {unknown} projection(s); roles: {sorted(family.roles)}")
    paths = list(dict.fromkeys(family.roles[r] for r in wanted))
    groups = [tuple(r for r, p in family.roles.items() if p == path) for path in paths]
    return [(group_label(g), g) for g in groups]


def rank_matrices(
    model: nn.Module,
    roles: Sequence[str] | None = None,
    layer_range: tuple[float, float] = (0.0, 1.0),
    method: str = "mp",
) -> list[RankedMatrix]:
    """Every 2-D weight of the decoder layers' role modules with its SNR.

    Grouped by module type (family role order), highest SNR first within a group; ties keep layer order.
    """
    params = dict(model.named_parameters())
    ranking: list[RankedMatrix] = []
    for label, group in role_groups(family_of(model), roles):
        names = select_parameters(model, layer_range, label, {label: group})
        scored = [RankedMatrix(n, label, snr(params[n], method)) for n in names if _is_matrix(n, params[n])]
        ranking += sorted(scored, key=lambda r: -r.snr)  # stable: ties stay in layer order
    return ranking


def _is_matrix(name: str, param: torch.Tensor) -> bool:
    return name.endswith(".weight") and param.ndim == 2


# --- selection ----------------------------------------------------------------------------------------


def by_group(ranking: Sequence[RankedMatrix]) -> dict[str, list[RankedMatrix]]:
    """Groups in order of first appearance, each sorted by SNR descending (stable for ties)."""
    groups: dict[str, list[RankedMatrix]] = {}
    for entry in ranking:
        groups.setdefault(entry.group, []).append(entry)
    return {g: sorted(members, key=lambda r: -r.snr) for g, members in groups.items()}


def select_by_fraction(ranking: Sequence[RankedMatrix], fraction: float) -> list[str]:
    """The paper's form: the top floor(fraction * n) matrices of every group (Spectrum-25: 0.25).

    Floor as in the reference code, so a group smaller than 1/fraction contributes nothing.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    chosen: list[str] = []
    for members in by_group(ranking).values():
        take = math.floor(fraction * len(members) + 1e-9)  # 0.29 * 100 is 28.999...
        chosen += [m.name for m in members[:take]]
    return chosen


def select_by_budget(ranking: Sequence[RankedMatrix], sizes: Mapping[str, int], budget_params: int) -> list[str]:
    """Matrices to train with at most `budget_params` parameters in total, by round-robin over groups.

    Each round visits the groups in ranking order and takes each group's next-highest-SNR matrix if it
    fits the remaining budget. A group whose next matrix does not fit is closed (taking a lower-SNR one
    would skip a better matrix of the same type); other groups go on. So every group keeps about the same
    fraction, as in the paper's form, and the total never exceeds the budget. Raises ValueError when not
    even one matrix fits (the smallest candidate exceeds the budget): training nothing is never intended.
    """
    if budget_params < 0:
        raise ValueError(f"budget must be >= 0 parameters, got {budget_params}")
    missing = [r.name for r in ranking if r.name not in sizes]
    if missing:
        raise KeyError(f"no size given for {missing[:5]}")
    queues = by_group(ranking)
    remaining, chosen, open_groups = budget_params, [], list(queues)
    while open_groups:
        still_open = []
        for group in open_groups:
            head = queues[group].pop(0)
            if sizes[head.name] > remaining:
                continue  # closes the group
            chosen.append(head.name)
            remaining -= sizes[head.name]
            if queues[group]:
                still_open.append(group)
        open_groups = still_open
    if ranking and not chosen:
        smallest = min(ranking, key=lambda r: sizes[r.name])
        raise ValueError(
            f"budget of {budget_params} parameters is smaller than the smallest candidate matrix "
            f"({smallest.name}, {sizes[smallest.name]} parameters)"
        )
    return chosen


def selection_record(
    ranking: Sequence[RankedMatrix], selected: Sequence[str], sizes: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """One dict per ranked matrix for logging: name, group, snr, rank in its group (1 = best), selected, numel."""
    chosen = set(selected)
    rows = []
    for group, members in by_group(ranking).items():
        for rank, m in enumerate(members, start=1):
            row = {"name": m.name, "group": group, "snr": m.snr, "rank_in_group": rank, "selected": m.name in chosen}
            if sizes is not None:
                row["numel"] = int(sizes[m.name])
            rows.append(row)
    return rows


def spectrum_selection(
    model: nn.Module,
    *,
    fraction: float | None = None,
    budget_params: int | None = None,
    roles: Sequence[str] | None = None,
    layer_range: tuple[float, float] = (0.0, 1.0),
    method: str = "mp",
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rank, select (give exactly one of `fraction`, `budget_params`) and record, in one call.

    Returns parameter names as in `model.named_parameters()` (for `regions.freeze_all_but`) and the record.
    """
    if (fraction is None) == (budget_params is None):
        raise ValueError("give exactly one of fraction and budget_params")
    ranking = rank_matrices(model, roles, layer_range, method)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    if fraction is not None:
        selected = select_by_fraction(ranking, fraction)
    else:
        selected = select_by_budget(ranking, sizes, budget_params)
    return selected, selection_record(ranking, selected, sizes)
