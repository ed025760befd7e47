"""Gradient flow against performance: Kendall's tau of EGF and the baselines, sparse and dense apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sweep.report.figures import log_x, plt, save_figure
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


def _plot_flow(usable: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4.2 * len(MEASURES), 3.6), sharey=True)
    sparse = usable["density"] < 1.0
    for ax, measure in zip(axes, MEASURES, strict=True):
        for label, rows, colour in (("sparse", sparse, "tab:blue"), ("dense", ~sparse, "tab:orange")):
            if rows.any():
                ax.scatter(
                    usable.loc[rows, measure], usable.loc[rows, "test_acc"], s=12, label=label, color=colour
                )
        name = measure.removesuffix("_mean")
        row = table[table["measure"] == name].tail(1)  # "all" when there are both groups
        tau = f" (tau {row['tau_acc'].iloc[0]:+.2f})" if not row.empty else ""
        ax.set_title(f"{name}{tau}", fontsize=10)
        log_x(ax)
        ax.set_xlabel(f"{name}, mean over training")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)
