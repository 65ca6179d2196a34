"""The run's results as Markdown: the summary table with its intervals, which items its numbers come
from, the claims, the per-task scores and the search's decisions. Only wording lives here: editing
it reruns the rules that write Markdown (the summary, the model card), never an evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from cofitune.evidence.claims import FAMILY_ALPHA, METRIC_NAMES
from cofitune.evidence.tables import display_name, kl_forgetting_correlation


def _interval(row: Mapping[str, Any], metric: str, fmt: str) -> str:
    value, low, high = row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"]
    if value is None:
        return ""
    if low is None or high is None:
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _number(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def markdown_report(summary: pa.Table, claims: pa.Table | None = None) -> str:
    """The summary as a Markdown table, best Uni. first; brackets are 95% bootstrap intervals; then
    the claims (`cofitune.evidence.claims`) when given."""
    header = "| model | region | trained | Spe. | Ver. | Uni. | KL | Ver. kept | Spe. gain | train s |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary.to_pylist():
        region = f"{row['layer_range']} {row['module_set']}".strip() + (" +mask" if row["softmask"] else "")
        name = f"**{row['label']}**" if row["cofitune"] else display_name(row)
        lines.append(
            f"| {name}{' *' if row['pareto'] else ''} | {region} | {row['trainable_fraction']:.1%} | "
            f"{_interval(row, 'spe', '{:.1f}')} | {_interval(row, 'ver', '{:.1f}')} | {_interval(row, 'uni', '{:.1f}')} | "
            f"{_number(row.get('kl_base'), '{:.4f}')} | "
            f"{_interval(row, 'ver_retention', '{:.0%}')} | {_interval(row, 'spe_gain_ratio', '{:.0%}')} | {row['train_wall_seconds']:.0f} |"
        )
    lines.append("")
    lines += items_markdown(summary.to_pylist())
    lines.append("`*` on the Pareto front of (Spe., Ver.). Ver. kept = Ver. / Ver.(base); Spe. gain = (Spe. - Spe.(base)) / (Spe.(full SFT) - Spe.(base)). "
                 "KL = mean KL(base || model) per token on the importance data (nats).")
    rho, n = kl_forgetting_correlation(summary.to_pylist())
    if n:
        lines.append(f"Forgetting signal: Spearman rank correlation of KL with the Ver. drop (Ver.(base) - Ver.) = {rho:.2f} over {n} trained models.")
    if claims is not None:
        lines.append(claims_markdown(claims))
    return "\n".join(lines)


def _per_task(low: int | None, high: int | None) -> str:
    return f"{low} items per task" if low == high else f"{low}-{high} items per task"


def items_markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Which items the table's numbers come from, and the chosen node's selection optimism."""
    if not rows or rows[0].get("confirm_items_min") is None:
        return []
    first = rows[0]
    confirm = _per_task(first["confirm_items_min"], first["confirm_items_max"])
    if first.get("select_items_min") is None:
        return [f"Scores on the confirm items ({confirm}); no search ran.", ""]
    lines = [f"Scores on the confirm items ({confirm}): no search decision saw them. The search chose its region on "
             f"other items of the same tasks (select, {_per_task(first['select_items_min'], first['select_items_max'])})."]
    for row in rows:
        if row.get("selection_optimism") is not None:
            lines.append(f"Selection optimism: node {row['candidate']}, the search's choice, scored Uni. {row['uni_select']:.1f} "
                         f"on the select items that chose it and {row['uni_confirm_same_runs']:.1f} on confirm "
                         f"({row['selection_optimism']:+.1f}; the same {row['selection_runs']} training run(s)).")
    return [*lines, ""]


def task_scores_markdown(intervals: Mapping[tuple[str, str, str], tuple[float, float, float, int]]) -> str:
    """One row per candidate, format and task: score with its 95% interval and the item count."""
    lines = ["| model | format | task | score [95% CI] | items |", "|---|---|---|---|---|"]
    for (candidate, fmt, task), (score, low, high, items) in sorted(intervals.items()):
        lines.append(f"| {candidate} | {fmt} | {task} | {score:.1f} [{low:.1f}, {high:.1f}] | {items} |")
    return "\n".join(lines) + "\n"


def search_confidence_markdown(trace: pa.Table) -> str:
    """Each search level: the contenders' P(best) and Uni. difference to the leader, and why the kept one."""
    rows = trace.to_pylist()
    if not rows or rows[0].get("p_best") is None:
        return ""
    lines = ["", "Search decisions, on the select items (P(best): share of resamples over items and seeds in which a "
             "contender has the highest Uni.; difference to the leader with its 95% interval):", ""]
    for level in sorted({r["level"] for r in rows}):
        contenders = [r for r in rows if r["level"] == level]
        parts = [f"{r['node']}{' (kept)' if r['chosen'] else ''} P(best) {r['p_best']:.2f}, "
                 f"{r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]" for r in contenders]
        lines.append(f"- level {level}: {'; '.join(parts)}. {contenders[0]['reason']}.")
    return "\n".join(lines)


def claims_markdown(table: pa.Table) -> str:
    """One line per claim: each metric's difference, interval and verdict."""
    rows = table.to_pylist()
    if not rows:
        return ""
    lines = ["", f"Claims (model minus reference; 95% intervals over seeds and items, paired; p: Holm-adjusted over the "
             f"{len(rows)} rows of the family; decided when p <= {FAMILY_ALPHA:g}, so that at most a {FAMILY_ALPHA:.0%} chance "
             "remains that any decided row is wrong):", ""]
    for name in dict.fromkeys(r["claim"] for r in rows):
        parts = [r for r in rows if r["claim"] == name]
        first = parts[0]
        seeds = f"{first['model_seeds']} vs {first['reference_seeds']} seed(s)"
        metrics = "; ".join(f"{METRIC_NAMES[r['metric']]} {r['diff']:+.1f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}] "
                            f"p {_p(r['p_holm'])} {r['verdict']}" for r in parts)
        lines.append(f"- {name}: {first['model_label']} vs {first['reference_label']} ({seeds}): {metrics}.")
    return "\n".join(lines)


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"
