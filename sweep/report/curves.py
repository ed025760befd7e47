"""Training curves of the top trials: test accuracy and EGF per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from sweep.report.figures import plt, save_figure
from sweep.report.markdown import Section

TOP = 5


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
    for key, curve in curves.groupby("trial_key", sort=False):
        label = f"{key[:8]} ({top.set_index('trial_key').loc[key, metric]:.3f})"
        acc_ax.plot(curve["epoch"], curve["test_acc"], marker=".", label=label)
        egf_ax.plot(curve["epoch"], curve["egf"], marker=".", label=label)
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
    egf_ax.set(xlabel="epoch", ylabel="EGF (EGF2)", title="effective gradient flow", yscale="log")
    for ax in (acc_ax, egf_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.legend(fontsize=7)
    save_figure(fig, out / section.figure)
    summary = curves.groupby("trial_key").agg(
        epochs=("epoch", "max"),
        final_test_acc=("test_acc", "last"),
        best_test_acc=("test_acc", "max"),
        final_egf=("egf", "last"),
    )
    order = [k for k in top["trial_key"] if k in summary.index]
    section.tables.append(("curves", summary.loc[order].reset_index()))
    section.lines.append(f"The top {len(order)} trials by {metric}; epoch 0 is the untrained net.")
    return section
