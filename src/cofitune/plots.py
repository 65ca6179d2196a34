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
