"""SNAS: the Pareto front of accuracy against active weights, the best allocations, the search over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from sweep.report.figures import log_axis, mark_outside, plt, robust_limits, save_figure
from sweep.report.markdown import Section
from sweep.store.summary import is_feasible, pareto_keys

SEARCH_ROLES = ("search", "warm_start")
TOP = 5


def snas_section(trials: pd.DataFrame, metric: str, out: Path) -> Section:
    section = Section("SNAS: the search")
    search = trials[trials["role"].isin(SEARCH_ROLES)].copy()
    if search.empty:
        section.lines.append("No search trials in the tables yet: nothing to show.")
        return section
    search = search.sort_values("started_at").reset_index(drop=True)
    search["trial"] = np.arange(1, len(search) + 1)
    front = set(search.loc[search["pareto"].fillna(False).astype(bool), "trial_key"])
    if search["pareto"].isna().all():
        front = pareto_keys(search.to_dict("records"), metric)
    search["on_front"] = search["trial_key"].isin(front)
    done = search[search["status"] == "done"].dropna(subset=[metric])
    done = done.assign(within_budget=[is_feasible(row) for row in done.to_dict("records")])
    feasible = done[done["within_budget"]]
    if feasible.empty:
        section.lines.append("No search trial finished within the budget: nothing to show.")
        return section
    best = feasible.sort_values(metric, ascending=False).head(TOP)
    section.figure = "snas.png"
    superseded = trials.get("superseded", pd.Series(False, index=trials.index)).fillna(False).astype(bool)
    finished = trials[trials["status"].eq("done") & ~superseded]
    if superseded.any():
        section.lines.append(
            f"{int(superseded.sum())} baselines of an earlier best trial, superseded when the search grew "
            "and found another, are left out (their rows stay in the tables, with `superseded` true)."
        )
    baselines = finished[finished["role"].fillna("").str.startswith("baseline_")]
    reseeded = finished[finished["role"].eq("best_reseeded")]
    paired = done[done["trial_key"].isin(baselines["pair_id"])]  # the trial the baselines were sized on
    comparison = baseline_comparison(paired if len(paired) else best.head(1), reseeded, baselines, metric)
    plotted = comparison if not baselines.empty else comparison[:0]
    _plot_snas(done, best, plotted, metric, out / section.figure)
    columns = ["trial", "trial_key", "role", metric, "test_acc", "active_weights", "densities", "on_front"]
    top = best[columns].assign(densities=best["densities"].map(densities_text))
    section.tables.append(("snas_best", top))
    front_table = done[done["on_front"]].sort_values("active_weights")[columns[:-1]]
    section.tables.append(
        ("snas_front", front_table.assign(densities=front_table["densities"].map(densities_text)))
    )
    lead = best.iloc[0]
    over = len(done) - len(feasible)
    budget = f"; {over} over the active-weight budget (drawn, not ranked)" if over else ""
    section.lines.append(
        f"{len(search)} search trials, {len(done)} done{budget}; the best reached {metric} "
        f"{lead[metric]:.4f} with {int(lead['active_weights']):,} active weights "
        f"(density {lead['density']:.3f}); {len(front_table)} trials on the Pareto front."
    )
    if baselines.empty:
        section.lines.append("No baselines in the tables (set search.baselines: true to train them).")
    else:
        section.tables.append(("snas_baselines", comparison))
        section.lines.append(
            "The baselines train, at the best trial's active-weight count, the uniform and ERK "
            "allocations and a dense net of the same depth (baseline_dense); baseline_full_dense is the "
            "best trial's architecture with every weight. `best` is the best search trial with its "
            "re-runs at the baselines' other seeds; each row gives the mean over its seeds and the range "
            "of test accuracy."
        )
    return section


def baseline_comparison(
    best: pd.DataFrame, reseeded: pd.DataFrame, baselines: pd.DataFrame, metric: str
) -> pd.DataFrame:
    """One row per role (the best trial and its re-runs as `best`, then each baseline), over its seeds."""
    runs = pd.concat([best.assign(role="best"), reseeded.assign(role="best"), baselines])
    grouped = runs.groupby("role", sort=False)
    table = grouped.agg(
        seeds=("seed", "nunique"),
        active_weights=("active_weights", "first"),
        **{metric: (metric, "mean")},
        test_acc=("test_acc", "mean"),
        test_min=("test_acc", "min"),
        test_max=("test_acc", "max"),
        densities=("densities", "first"),
    ).reset_index()
    return table.assign(densities=table["densities"].map(densities_text))


def _plot_snas(
    done: pd.DataFrame, best: pd.DataFrame, baselines: pd.DataFrame, metric: str, path: Path
) -> None:
    fig, (front_ax, bars_ax, progress_ax) = plt.subplots(1, 3, figsize=(15, 4))
    inside, over = done[done["within_budget"]], done[~done["within_budget"]]
    front_ax.scatter(inside["active_weights"], inside[metric], s=14, color="tab:gray", label="trials")
    if len(over):
        front_ax.scatter(
            over["active_weights"], over[metric], s=14, marker="x", color="tab:gray", label="over budget"
        )
    front = done[done["on_front"]].sort_values("active_weights")
    front_ax.plot(front["active_weights"], front[metric], "o-", color="tab:red", ms=4, label="Pareto front")
    note = _plot_baselines(front_ax, baselines, metric)
    log_axis(front_ax)
    front_ax.set(xlabel="active weights", ylabel=metric)
    front_ax.set_title(
        "accuracy against size" + (f"\n({note})" if note else ""), fontsize=11 if not note else 9
    )
    front_ax.legend(fontsize=7)
    limits = robust_limits([*done[metric], *baselines[metric]])
    if limits:
        mark_outside(front_ax, done["active_weights"], done[metric], limits)
    width = 0.8 / max(1, len(best))
    depth = max(len(d) for d in best["densities"])
    for i, (_, row) in enumerate(best.iterrows()):
        offset = (i - (len(best) - 1) / 2) * width
        label = f"trial {row['trial']}: {row[metric]:.3f}"
        bars_ax.bar(np.arange(len(row["densities"])) + offset, row["densities"], width=width, label=label)
    own = "family" not in best or best["family"].isin(["mlp", "cnn"]).all()  # another family: layer numbers
    names = [*(f"hidden {i}" for i in range(depth - 1)), "output"] if own else [str(i) for i in range(depth)]
    bars_ax.set_xticks(range(depth), names)
    bars_ax.set(ylabel="density", title=f"per-layer densities of the top {len(best)}")
    bars_ax.legend(fontsize=7)
    progress_ax.plot(inside["trial"], inside[metric], "o", ms=4, color="tab:gray")
    progress_ax.plot(over["trial"], over[metric], "x", ms=4, color="tab:gray")
    best_so_far = done[metric].where(done["within_budget"]).cummax().ffill()  # over-budget trials: no change
    progress_ax.plot(done["trial"], best_so_far, "-", color="tab:green", label="best so far")
    progress_ax.set(xlabel="trial", ylabel=metric, title="the search over time")
    progress_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    progress_ax.legend(fontsize=7)
    if limits:
        mark_outside(progress_ax, done["trial"], done[metric], limits)
    for ax in (front_ax, bars_ax, progress_ax):
        ax.grid(alpha=0.3)
    save_figure(fig, path)


BASELINE_MARKERS = ("s", "D", "^", "v", "P", "X")


def _plot_baselines(ax: plt.Axes, baselines: pd.DataFrame, metric: str) -> str:
    """Each role's mean over its seeds. The best trial and the uniform, ERK and dense baselines have about
    the same active-weight count by design (the dense net's widths round it), so near that count each marker
    is shifted sideways by a few points (its x in data stays the true count); returns a note saying so."""
    if baselines.empty:
        return ""
    size = float(baselines["active_weights"].iloc[0])  # the best trial's: the size the baselines match
    near = (baselines["active_weights"] / size - 1).abs() < 0.05
    offsets = (np.arange(near.sum()) - (near.sum() - 1) / 2) * 7
    shift = dict(zip(baselines.index[near], offsets, strict=True))
    for i, (index, row) in enumerate(baselines.iterrows()):
        transform = offset_copy(ax.transData, fig=ax.figure, x=shift.get(index, 0.0), units="points")
        ax.scatter(
            row["active_weights"],
            row[metric],
            marker=BASELINE_MARKERS[i % len(BASELINE_MARKERS)],
            s=34,
            edgecolor="black",
            linewidth=0.5,
            transform=transform,
            zorder=4,
            label=f"{str(row['role']).removeprefix('baseline_')} ({row['seeds']} seeds)",
        )
    if near.sum() < 2:
        return ""
    first = str(baselines["role"].iloc[0])
    return (
        f"{first} and {int(near.sum()) - 1} baselines at ~{int(size):,} weights by design, drawn side by side"
    )


def densities_text(values: Sequence[float] | None) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]" if values is not None else ""
