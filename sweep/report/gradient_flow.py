"""Gradient flow against performance: Kendall's tau of EGF and the baselines, sparse and dense apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sweep.report.figures import log_axis, mark_outside, plt, robust_limits, save_figure
from sweep.report.markdown import Section

MEASURES = ("gf1_mean", "gf2_mean", "egf1_mean", "egf2_mean")


def gradient_flow_section(trials: pd.DataFrame, out: Path) -> Section:
    section = Section("Gradient flow against performance")
    usable = trials[trials["status"].isin(["done", "stopped"])].dropna(subset=["test_acc", *MEASURES])
    usable = usable[np.isfinite(usable[list(MEASURES)]).all(axis=1)]
    if len(usable) < 3:
        section.lines.append(
            f"Only {len(usable)} finished trial(s) with finite measures: a correlation needs at least 3."
        )
        return section
    table = flow_correlations(usable)
    section.tables.append(("gradient_flow", table))
    section.figure = "gradient_flow.png"
    _plot_flow(usable, table, out / section.figure)
    best = table[table["group"] == "sparse"]
    if not best.empty:
        top = best.loc[best["tau_acc"].abs().idxmax()]
        section.lines.append(
            f"For sparse nets, the measure most correlated with test accuracy is {top['measure']} "
            f"(Kendall's tau {top['tau_acc']:+.3f}, p = {top['p_acc']:.3g})."
        )
    section.lines.append(
        "Each measure is its mean over 11 epochs spread evenly through training, the untrained net and "
        "the last epoch included (every epoch when there are fewer; the paper's summary). Kendall's "
        "tau is reported with its sign, separately for sparse (density < 1) and dense nets. The paper "
        "(Fashion-MNIST, sparse MLPs) reports tau with test loss / accuracy of 0.355 / 0.316 for gf1, "
        "0.282 / 0.292 for gf2, 0.419 / 0.373 for EGF1 and 0.360 / 0.323 for EGF2, as magnitudes."
    )
    section.lines.append(
        "The figure has a row of panels per group, sparse nets (density < 1) above dense nets, each titled "
        "with that group's tau against test accuracy; the `all` rows of the table pool both groups."
    )
    return section


def flow_correlations(usable: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau (and p) of each measure with test accuracy and test loss, per group of nets."""
    groups = {"sparse": usable[usable["density"] < 1.0], "dense": usable[usable["density"] >= 1.0]}
    if all(len(frame) for frame in groups.values()):
        groups["all"] = usable
    rows = []
    for group, frame in groups.items():
        if len(frame) < 3:
            continue
        for measure in MEASURES:
            tau_acc, p_acc = stats.kendalltau(frame[measure], frame["test_acc"])
            tau_loss, p_loss = stats.kendalltau(frame[measure], frame["test_loss"])
            rows.append(
                {
                    "group": group,
                    "measure": measure.removesuffix("_mean"),
                    "n": len(frame),
                    "tau_acc": float(tau_acc),
                    "p_acc": float(p_acc),
                    "tau_loss": float(tau_loss),
                    "p_loss": float(p_loss),
                }
            )
    return pd.DataFrame(rows)


GROUP_COLOURS = {"sparse": "tab:blue", "dense": "tab:orange"}


def _plot_flow(usable: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    """One row of panels per group (sparse nets, density < 1; dense nets), each titled with that group's
    Kendall's tau against test accuracy; the y-axis keeps to where the trials are and marks the rest."""
    sparse = usable["density"] < 1.0
    groups = [(name, usable[rows]) for name, rows in (("sparse", sparse), ("dense", ~sparse)) if rows.any()]
    fig, axes = plt.subplots(
        len(groups),
        len(MEASURES),
        figsize=(4.2 * len(MEASURES), 3.3 * len(groups)),
        sharey=True,
        squeeze=False,
    )
    limits = robust_limits(usable["test_acc"])
    for (group, frame), row_axes in zip(groups, axes, strict=True):
        for ax, measure in zip(row_axes, MEASURES, strict=True):
            ax.scatter(
                frame[measure], frame["test_acc"], s=12, color=GROUP_COLOURS[group], label=f"{group} nets"
            )
            name = measure.removesuffix("_mean")
            row = table[(table["group"] == group) & (table["measure"] == name)]
            tau = (
                f"tau {row['tau_acc'].iloc[0]:+.2f} (p {row['p_acc'].iloc[0]:.2g}, n {int(row['n'].iloc[0])})"
                if not row.empty
                else f"n {len(frame)}: too few for tau"
            )
            ax.set_title(f"{name}, {group} nets: {tau}", fontsize=9)
            log_axis(ax)
            ax.set_xlabel(f"{name}, mean over training")
            ax.grid(alpha=0.3)
            if limits:
                mark_outside(ax, frame[measure], frame["test_acc"], limits)
        row_axes[0].set_ylabel(f"test accuracy ({group})")
        row_axes[0].legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
