"""Training dynamics per SC-SDC cell: mean test accuracy and EGF over the epochs, and late collapses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from sweep.report.cells import cell_title
from sweep.report.figures import log_axis, plt, save_figure
from sweep.report.markdown import Section

COLLAPSE = 0.05  # "collapsed": final test accuracy more than 0.05 (5 percentage points) below its best epoch


def dynamics_section(trials: pd.DataFrame, epochs: pd.DataFrame, cells: list[str], out: Path) -> Section:
    """Per grid cell and role: mean test accuracy and EGF over the epochs, and late collapses."""
    section = Section("Training dynamics per cell")
    grid = trials[trials["role"].isin(["sparse", "dense"])]
    if grid.empty:
        section.lines.append("No sparse and dense trials in the tables yet: nothing to follow.")
        return section
    keys = [*cells, "role"]
    curves = epochs[["trial_key", "epoch", "test_acc", "egf"]].merge(
        grid[["trial_key", *keys]], on="trial_key"
    )
    mean = curves.groupby([*keys, "epoch"], dropna=False)[["test_acc", "egf"]].mean().reset_index()
    section.figure = "dynamics.png"
    _plot_dynamics(mean, keys, out / section.figure)
    best = curves.groupby("trial_key")["test_acc"].max().rename("best_test_acc")
    per_trial = grid.set_index("trial_key").join(best)
    per_trial["collapsed"] = per_trial["best_test_acc"] - per_trial["test_acc"] > COLLAPSE
    table = (
        per_trial.groupby(keys, dropna=False)
        .agg(
            trials=("test_acc", "size"),
            final_test_acc=("test_acc", "mean"),
            best_test_acc=("best_test_acc", "mean"),
            collapsed=("collapsed", "sum"),
            diverged=("status", lambda s: int((s == "diverged").sum())),
            egf_mean=("egf2_mean", "mean"),
            egf_final=("egf", "mean"),
        )
        .reset_index()
    )
    section.tables.append(("dynamics", table))
    section.lines.append(
        f"Means over each cell's trials. A trial counts as collapsed when its final test accuracy is more "
        f"than {COLLAPSE:g} ({COLLAPSE * 100:g} percentage points) below the best it reached at any epoch; "
        "egf_mean is the trials' egf2_mean, EGF averaged over training. The accuracy panel starts at epoch 1 "
        "(the untrained net's chance accuracy would flatten the rest), or at 0 for a sweep of one epoch."
    )
    return section


def _plot_dynamics(mean: pd.DataFrame, keys: list[str], path: Path) -> None:
    fig, (acc_ax, egf_ax) = plt.subplots(1, 2, figsize=(13, 4.4))
    groups = list(mean.groupby(keys[:-1], dropna=False)) if len(keys) > 1 else [("all", mean)]
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    # From epoch 1: the untrained net's ~chance accuracy would flatten the rest. A sweep of one epoch starts
    # at epoch 0 instead, so that each line has two points to join.
    first = 1 if mean["epoch"].max() > 1 else 0
    for i, (key, group) in enumerate(groups):
        for role, line in group.groupby("role"):
            style = "-" if role == "sparse" else "--"
            label = f"{cell_title(keys[:-1], key) if len(keys) > 1 else 'all'}, {role}"
            trained = line[line["epoch"] >= first]
            colour = colours[i % 10]
            acc_ax.plot(
                trained["epoch"], trained["test_acc"], style, marker="o", ms=3, color=colour, label=label
            )
            egf_ax.plot(line["epoch"], line["egf"], style, marker="o", ms=3, color=colour, label=label)
    acc_ax.set(
        xlabel="epoch", ylabel="test accuracy", title=f"test accuracy from epoch {first} (mean per cell)"
    )
    egf_ax.set(xlabel="epoch", ylabel="EGF", title="effective gradient flow (mean per cell)")
    log_axis(egf_ax, "y")
    for ax in (acc_ax, egf_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    egf_ax.legend(fontsize=6, ncol=2, loc="best")
    save_figure(fig, path)
