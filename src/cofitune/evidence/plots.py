"""Pictures for people: importance heatmaps, the trade-off scatter, loss curves and the search tree."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workflow jobs have no display

import matplotlib.pyplot as plt
import torch

from cofitune.methods.recipes import Method

UNIT_LABELS = {
    "head": "attention head",
    "intermediate": "FFN intermediate neuron",
    "output": "FFN output dimension",
}


def importance_heatmap(values: torch.Tensor, unit_type: str, out_file: str | Path, note: str = "") -> None:
    """Layers (rows, input at the bottom) x units; colour is the normalised importance in [0, 1)."""
    layers, units = values.shape
    width = min(14.0, max(6.0, units / 40))
    fig, ax = plt.subplots(figsize=(width, max(3.0, layers * 0.22 + 1.5)), dpi=110)
    image = ax.imshow(values.numpy(), aspect="auto", origin="lower", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xlabel(f"{UNIT_LABELS.get(unit_type, unit_type)} index")
    ax.set_ylabel("layer")
    title = f"Versatility importance per {UNIT_LABELS.get(unit_type, unit_type)}"
    ax.set_title(f"{title}\n{note}" if note else title, fontsize=10)
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
    """Spe. (y) against Ver. (x) of every evaluated model, 95% intervals, the Pareto front as a staircase.

    Models with identical scores share one label ("A = B"); labels are moved off each other.
    """
    fig, ax = plt.subplots(figsize=(8.5, 6.0), dpi=110)
    for row in rows:
        node = Method(row["method"]).recipe.is_search_node
        marker, colour, size = STYLE.get(row["label"].split(" (")[0], ("o", "#1f77b4" if node else "#ff7f0e", 45))
        ax.errorbar(row["ver"], row["spe"], xerr=_err(row, "ver"), yerr=_err(row, "spe"), fmt="none", ecolor=colour, alpha=0.3, lw=1, zorder=2)
        ax.scatter(row["ver"], row["spe"], marker=marker, s=size, color=colour, edgecolor="black", linewidth=0.5, zorder=3)
    _full_sft_curve(ax, rows)
    ax.autoscale_view()
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    front = sorted({(r["ver"], r["spe"]) for r in rows if r["pareto"]})
    if front:
        ax.plot(*_staircase(front, xlim[0], ylim[0]), "--", color="#2ca02c", alpha=0.6, lw=1.3, label="Pareto front", zorder=1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    _place_labels(ax, shared_labels(rows), fontsize=7.5)
    ax.set_xlabel(f"Ver. (versatility, {rank_format} format, 0-100)")
    ax.set_ylabel("Spe. (speciality, 0-100)")
    ax.set_title("Speciality vs versatility of every reported model, on the confirm items (bars: 95% bootstrap intervals)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_file, format="png")
    plt.close(fig)


def _full_sft_curve(ax, rows: list[dict]) -> None:
    """Full SFT over its learning rates, joined lowest to highest: how much forgetting a smaller rate avoids."""
    from cofitune.evidence.tables import full_sft_rows

    curve = full_sft_rows(rows)
    if len(curve) > 1:
        ax.plot([r["ver"] for r in curve], [r["spe"] for r in curve], "-", color=STYLE["Full SFT"][1], alpha=0.5, lw=1.2,
                label="full SFT over learning rates", zorder=1)


def shared_labels(rows: list[dict]) -> dict[tuple[float, float], str]:
    """(Ver., Spe.) -> label; models with identical scores share one ("CoFiTune = 0.5-0.75_mha+ffn")."""
    groups: dict[tuple[float, float], list[str]] = {}
    for row in rows:
        name = row["label"] if row["label"] != "region" else row["candidate"]
        groups.setdefault((round(row["ver"], 6), round(row["spe"], 6)), []).append(name)
    return {point: " = ".join(sorted(names, key=lambda n: (n != "CoFiTune", n))) for point, names in groups.items()}


def _staircase(front: list[tuple[float, float]], x_min: float, y_min: float) -> tuple[list[float], list[float]]:
    """The boundary of the region the front dominates (more Ver. and more Spe. are better)."""
    xs, ys = [x_min], [front[0][1]]
    for (x, y), (_, y_next) in zip(front, [*front[1:], (None, y_min)], strict=True):
        xs += [x, x]
        ys += [y, y_next]
    return xs, ys


def _place_labels(ax, labels: dict[tuple[float, float], str], fontsize: float) -> None:
    """Annotate each point, trying a few offsets until the label's box overlaps no earlier one."""
    scale = ax.figure.dpi / 72.0
    height = fontsize * 1.3 * scale
    offsets = [(6, 4), (6, -12), (6, 14), (6, -22), (6, 24), (6, -32)]
    placed: list[tuple[float, float, float, float]] = []
    for (x, y), text in sorted(labels.items(), key=lambda item: (-item[0][1], item[0][0])):
        width = 0.55 * fontsize * len(text) * scale
        px, py = ax.transData.transform((x, y))
        for dx, dy in [*offsets, *((-dx - width / scale - 6, dy) for dx, dy in offsets)]:
            box = (px + dx * scale, py + dy * scale, px + dx * scale + width, py + dy * scale + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize)


def _err(row: dict, metric: str):
    low, high = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if low is None or high is None:
        return None
    return [[max(0.0, row[metric] - low)], [max(0.0, high - row[metric])]]


def loss_curves(histories: dict[str, list[dict]], out_file: str | Path) -> None:
    """Training loss per optimizer step, one line per trained candidate."""
    fig, ax = plt.subplots(figsize=(8.5, 5.0), dpi=110)
    colours = plt.get_cmap("tab20").colors  # matplotlib's default cycle repeats after 10 lines
    for i, (name, history) in enumerate(sorted((n, h) for n, h in histories.items() if h)):
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1.2, label=name,
                color=colours[(2 * i) % 20 + (i // 10) % 2], linestyle=("-", "--")[(i // 20) % 2])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean over target tokens)")
    ax.set_title("SFT loss curves", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_file, format="png")
    plt.close(fig)


def search_tree(trace: list[dict], final: dict | None, out_file: str | Path, fmt: str = "svg") -> None:
    """The coarse search as a tree: one row per level, each contender a box with its scores on the
    select items (what the search decided on), edges from the node the previous level kept; the kept
    path in green, ending in the final model with its scores on the confirm items."""
    levels = sorted({row["level"] for row in trace})
    width = max(len([r for r in trace if r["level"] == k]) for k in levels)
    fig, ax = plt.subplots(figsize=(max(7.0, 3.2 * width), 1.7 * (len(levels) + 2)), dpi=110)
    positions = {("root", 0): (0.0, 0.0)}
    _tree_box(ax, (0.0, 0.0), "whole model\n(all layers, all modules)", chosen=True)
    parent_at = (0.0, 0.0)
    for k in levels:
        contenders = [r for r in trace if r["level"] == k]
        kept_at = parent_at
        for i, row in enumerate(contenders):
            at = ((i - (len(contenders) - 1) / 2) * 3.0, -1.6 * k)
            positions[(row["node"], k)] = at
            ax.plot([parent_at[0], at[0]], [parent_at[1] - 0.35, at[1] + 0.35], color="#2ca02c" if row["chosen"] else "#bbbbbb",
                    lw=2.2 if row["chosen"] else 1.0, zorder=1)
            text = f"{row['layer_range']} {row['module_set']}\nUni. {row['uni']:.1f}  (Spe. {row['spe']:.1f}, Ver. {row['ver']:.1f})"
            if row.get("p_best") is not None:
                text += f"\nP(best) {row['p_best']:.2f}"
            _tree_box(ax, at, text, chosen=row["chosen"])
            if row["chosen"]:
                kept_at = at
        ax.text(-1.5 * width - 0.6, -1.6 * k, f"level {k}", ha="right", va="center", fontsize=9, color="#555555")
        parent_at = kept_at
    if final is not None:
        at = (parent_at[0], -1.6 * (len(levels) + 1))
        ax.plot([parent_at[0], at[0]], [parent_at[1] - 0.35, at[1] + 0.35], color="#2ca02c", lw=2.2, ls="--", zorder=1)
        mask = " + soft-mask" if final["softmask"] else ""
        _tree_box(ax, at, f"CoFiTune: {final['layer_range']} {final['module_set']}{mask}\nconfirm items: Uni. {final['uni']:.1f}  "
                          f"(Spe. {final['spe']:.1f}, Ver. {final['ver']:.1f})", chosen=True, final=True)
    ax.set_xlim(-1.5 * width - 1.6, 1.5 * width + 0.2)
    ax.set_ylim(-1.6 * (len(levels) + 1) - 0.6, 0.6)
    ax.axis("off")
    ax.set_title("Coarse search on the select items: each level's contenders, the kept node in green (Uni. = Spe. + Ver.);\n"
                 "the CoFiTune model scored on the confirm items, which no decision saw", fontsize=10)
    fig.tight_layout()
    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, and crisp at any zoom
        fig.savefig(out_file, format=fmt, metadata={"Date": None} if fmt == "svg" else None)  # no timestamp
    plt.close(fig)


def _tree_box(ax, at: tuple[float, float], text: str, chosen: bool, final: bool = False) -> None:
    face = "#c7e9c0" if final else ("#e5f5e0" if chosen else "#f4f4f4")
    edge = "#2ca02c" if chosen else "#999999"
    ax.text(*at, text, ha="center", va="center", fontsize=8, zorder=2,
            bbox={"boxstyle": "round,pad=0.45", "facecolor": face, "edgecolor": edge, "linewidth": 2.0 if chosen else 0.8})
