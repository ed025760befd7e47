"""Training curves of the top trials: test accuracy and EGF per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from sweep.report.figures import log_axis, plt, save_figure
from sweep.report.markdown import Section

TOP = 5
DASHED_ROLES = ("dense", "baseline_dense", "baseline_full_dense")


def curves_section(trials: pd.DataFrame, epochs: pd.DataFrame, metric: str, out: Path) -> Section:
    section = Section("Training curves of the top trials")
    ranked = trials[trials["status"].isin(["done", "stopped"])].dropna(subset=[metric])
    top = ranked.sort_values(metric, ascending=False).head(TOP)
    curves = epochs[epochs["trial_key"].isin(top["trial_key"])].sort_values(["trial_key", "epoch"])
    if curves.empty:
        section.lines.append("No epochs recorded for finished trials.")
        return section
    section.figure = "curves.png"
    fig, (acc_ax, egf_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    ranked_top = top.set_index("trial_key")
    for key in (k for k in top["trial_key"] if k in set(curves["trial_key"])):  # in rank order
        curve = curves[curves["trial_key"] == key]
        role = _role(ranked_top.loc[key, "role"])
        label = f"{key[:8]} {role}: {metric} {ranked_top.loc[key, metric]:.3f}"
        style = "--" if role in DASHED_ROLES else "-"
        acc_ax.plot(curve["epoch"], curve["test_acc"], style, marker=".", label=label)
        egf_ax.plot(curve["epoch"], curve["egf"], style, marker=".", label=label)
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
    egf_ax.set(xlabel="epoch", ylabel="EGF (EGF2)", title="effective gradient flow")
    log_axis(egf_ax, "y")
    for ax in (acc_ax, egf_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.legend(fontsize=7, title=f"trial, role: ranked by {metric}", title_fontsize=7)
    save_figure(fig, out / section.figure)
    summary = curves.groupby("trial_key").agg(
        epochs=("epoch", "max"),
        final_test_acc=("test_acc", "last"),
        best_test_acc=("test_acc", "max"),
        final_egf=("egf", "last"),
    )
    order = [k for k in top["trial_key"] if k in summary.index]
    table = summary.loc[order].reset_index()
    table.insert(1, "role", [_role(r) for r in ranked_top.loc[order, "role"]])
    section.tables.append(("curves", table))
    section.lines.append(
        f"The top {len(order)} trials by {metric}: the legend gives each one's role and {metric}, the panels "
        "its test accuracy and EGF per epoch (dense nets dashed); epoch 0 is the untrained net."
    )
    return section


def _role(value: object) -> str:
    """A trial's role in its sweep (sparse, dense, search, baseline_...), or "trial" when it has none."""
    return "trial" if value is None or pd.isna(value) else str(value)
