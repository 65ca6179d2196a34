"""Pictures for people: importance heatmaps (and, later, the trade-off scatter and loss curves)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workflow jobs have no display

import matplotlib.pyplot as plt
import torch

UNIT_LABELS = {
    "head": "attention head",
    "intermediate": "FFN intermediate neuron",
    "output": "FFN output dimension",
}


def importance_heatmap(values: torch.Tensor, unit_type: str, out_file: str | Path) -> None:
    """Layers (rows, input at the bottom) x units; colour is the normalised importance in [0, 1)."""
    layers, units = values.shape
    width = min(14.0, max(6.0, units / 40))
    fig, ax = plt.subplots(figsize=(width, max(3.0, layers * 0.22 + 1.5)), dpi=110)
    image = ax.imshow(values.numpy(), aspect="auto", origin="lower", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xlabel(f"{UNIT_LABELS.get(unit_type, unit_type)} index")
    ax.set_ylabel("layer")
    ax.set_title(f"Versatility importance per {UNIT_LABELS.get(unit_type, unit_type)}", fontsize=10)
    fig.colorbar(image, ax=ax, label="I (soft-mask keeps 1 - I of the update)")
    fig.tight_layout()
    fig.savefig(out_file, format="png")
    plt.close(fig)


STYLE = {  # label -> (marker, colour, size)
    "Base": ("s", "#444444", 90),
    "Full SFT": ("D", "#d62728", 80),
    "CoFiTune": ("*", "#2ca02c", 260),
    "V-SoftMask": ("P", "#9467bd", 90),
}


def tradeoff_scatter(rows: list[dict], out_file: str | Path, rank_format: str) -> None:
    """Spe. (y) against Ver. (x) of every evaluated model, 95% intervals, the Pareto front as a line."""
    fig, ax = plt.subplots(figsize=(8.5, 6.0), dpi=110)
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["ver"])
    if len(front) > 1:
        ax.plot([r["ver"] for r in front], [r["spe"] for r in front], "--", color="#2ca02c", alpha=0.5, lw=1.5, label="Pareto front", zorder=1)
    for row in rows:
        marker, colour, size = STYLE.get(row["label"], ("o", "#1f77b4" if row["method"].startswith("region") else "#ff7f0e", 45))
        xerr = _err(row, "ver")
        yerr = _err(row, "spe")
        ax.errorbar(row["ver"], row["spe"], xerr=xerr, yerr=yerr, fmt="none", ecolor=colour, alpha=0.35, lw=1, zorder=2)
        ax.scatter(row["ver"], row["spe"], marker=marker, s=size, color=colour, edgecolor="black", linewidth=0.5, zorder=3)
        name = row["label"] if row["label"] != "region" else row["candidate"]
        ax.annotate(name, (row["ver"], row["spe"]), textcoords="offset points", xytext=(6, 4), fontsize=7.5)
    ax.set_xlabel(f"Ver. (versatility, {rank_format} format, 0-100)")
    ax.set_ylabel("Spe. (speciality, 0-100)")
    ax.set_title("Speciality vs versatility of every evaluated model (bars: 95% bootstrap intervals)", fontsize=10)
    ax.grid(alpha=0.3)
    if len(front) > 1:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, format="png")
    plt.close(fig)


def _err(row: dict, metric: str):
    low, high = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if low is None or high is None:
        return None
    return [[max(0.0, row[metric] - low)], [max(0.0, high - row[metric])]]


def loss_curves(histories: dict[str, list[dict]], out_file: str | Path) -> None:
    """Training loss per optimizer step, one line per trained candidate."""
    fig, ax = plt.subplots(figsize=(8.5, 5.0), dpi=110)
    for name, history in sorted(histories.items()):
        if history:
            ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1.2, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean over target tokens)")
    ax.set_title("SFT loss curves", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_file, format="png")
    plt.close(fig)
