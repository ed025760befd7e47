"""Mask methods side by side: test accuracy and EGF by method and density, each with its same-capacity dense
partner where the sweep trained one, and the paired test of "sparse beats dense" for each method."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweep.report.figures import log_axis, plt, save_figure
from sweep.report.markdown import Section
from sweep.report.sc_sdc import pair_verdicts, paired_accuracies


def methods_section(trials: pd.DataFrame, out: Path) -> Section | None:
    """None unless the sweep's sparse trials use more than one mask method."""
    if "method" not in trials.columns:
        return None
    trials = _with_scope(trials)
    sparse = trials[trials["status"].eq("done") & trials["role"].ne("dense") & trials["density"].lt(1.0)]
    if sparse["method"].nunique() < 2:
        return None
    section = Section("Mask methods")
    table = method_table(trials)
    section.tables.append(("methods", table))
    section.figure = "methods.png"
    _plot(table, out / section.figure)
    pairs = paired_accuracies(trials, ["method"])
    if not pairs.empty:
        tests = pair_verdicts(pairs, ["method"])
        if not tests["added_later"].any():  # no growth added pairs: the column says nothing
            tests = tests.drop(columns="added_later")
        section.tables.append(("methods_tests", tests))
    best = table.sort_values("test_acc", ascending=False).groupby("density", sort=False).head(1)
    leaders = ", ".join(
        f"{row.method} at {row.density:.3g}" for row in best.sort_values("density").itertuples()
    )
    section.lines += [
        f"{sparse['method'].nunique()} methods, {len(sparse)} finished sparse trials. Best test accuracy per "
        f"density: {leaders}.",
        "Each row is a method at one density: the mean and spread over seeds of the final test accuracy, "
        "EGF (egf2_mean: its mean over training) and the wall time; `dense_acc` is the mean of the "
        "same-capacity dense partners where the sweep trained them. `methods_tests` tests H1 'sparse beats "
        "dense' per method over its pairs (one-sided Wilcoxon and sign tests).",
    ]
    return section


def _with_scope(trials: pd.DataFrame) -> pd.DataFrame:
    """A method that allocates across layers (`scope: global`) is its own row: `snip (global)`."""
    if "scope" not in trials.columns:
        return trials
    method = trials["method"].where(trials["scope"].ne("global"), trials["method"] + " (global)")
    return trials.assign(method=method)


def method_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per method and density: trials, test accuracy (mean, std), EGF, wall time, and the dense partners."""
    done = trials[trials["status"].eq("done")]
    sparse = done[done["role"].ne("dense") & done["density"].lt(1.0)].copy()
    sparse["density"] = sparse["density"].round(4)
    grouped = sparse.groupby(["method", "density"])
    table = grouped.agg(
        trials=("test_acc", "size"),
        test_acc=("test_acc", "mean"),
        test_std=("test_acc", "std"),
        egf=("egf2_mean", "mean"),
        wall_s=("wall_s", "mean"),
        active_weights=("active_weights", "mean"),
    ).reset_index()
    dense = done[done["role"].eq("dense")].set_index("trial_key")["test_acc"]
    partners = sparse.assign(dense_acc=sparse["pair_id"].map(dense))
    dense_means = partners.groupby(["method", "density"])["dense_acc"].mean().reset_index()
    return table.merge(dense_means, on=["method", "density"], how="left")


def _plot(table: pd.DataFrame, path: Path) -> None:
    fig, (acc_ax, egf_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for method, rows in table.groupby("method"):
        rows = rows.sort_values("density")
        acc_ax.errorbar(
            rows["density"],
            rows["test_acc"],
            yerr=rows["test_std"].fillna(0),
            marker="o",
            ms=4,
            capsize=2,
            label=method,
        )
        egf_ax.plot(rows["density"], rows["egf"], marker="o", ms=4, label=method)
    reference = table.dropna(subset=["dense_acc"]).groupby("density")["dense_acc"].mean()
    if not reference.empty:
        acc_ax.plot(reference.index, reference.values, "k--", marker="s", ms=4, label="dense, same capacity")
    for ax in (acc_ax, egf_ax):
        log_axis(ax)
        ax.set_xlabel("density (share of active weights)")
        ax.grid(alpha=0.3)
    acc_ax.set(ylabel="test accuracy", title="final test accuracy (mean ± std over seeds)")
    egf_ax.set(ylabel="EGF (egf2_mean)", title="effective gradient flow, mean over training", yscale="log")
    acc_ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
