"""SC-SDC: accuracy against active weights for sparse and dense nets, and the paired tests per cell."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sweep.report.cells import cell_title
from sweep.report.figures import log_axis, plt, save_figure
from sweep.report.markdown import Section


def sc_sdc_section(trials: pd.DataFrame, cells: list[str], out: Path) -> Section:
    section = Section("SC-SDC: sparse against dense at the same capacity")
    pairs = paired_accuracies(trials, cells)
    if pairs.empty:
        section.lines.append("No pair has both its sparse and its dense trial done yet: nothing to compare.")
        return section
    verdicts = pair_verdicts(pairs, cells)
    by_width = pair_verdicts(pairs, [*cells, "dense_width"]).iloc[:-1]  # its last row repeats "all"
    grown = int(verdicts["added_later"].iloc[-1])
    if not grown:  # the column marks the pairs growths added: none here
        verdicts, by_width = verdicts.drop(columns="added_later"), by_width.drop(columns="added_later")
    section.tables.append(("sc_sdc_tests", verdicts))
    section.tables.append(("sc_sdc_by_width", by_width))
    points = _accuracy_points(trials, cells)
    section.tables.append(("sc_sdc_points", points))
    section.figure = "sc_sdc_accuracy.png"
    _plot_sc_sdc(points, cells, out / section.figure)
    overall = verdicts.iloc[-1]
    section.lines += [
        f"{int(overall['pairs'])} pairs. Sparse beats its dense partner in {overall['sparse_wins']:.0%} "
        f"of them (one-sided Wilcoxon signed-rank p = {overall['p_wilcoxon']:.3g}, sign test p = "
        f"{overall['p_sign']:.3g}).",
        "Each cell tests H1 'sparse beats dense' on test accuracy over its pairs; a small p supports it. "
        "`sc_sdc_by_width` repeats the tests for each width of the dense partner (that is, each capacity). "
        "The figure's lines are means over seeds and the bands span the lowest to the highest seed.",
    ]
    if mismatch := _mismatch_line(pairs):
        section.lines.append(mismatch)
    if grown:
        where = f", in {int((verdicts['added_later'].iloc[:-1] > 0).sum())} cells" if cells else ""
        section.lines.append(
            f"**Grown after the first run:** {grown} of the {int(overall['pairs'])} pairs were added when "
            f"the sweep grew (`added_later`{where}; `sweep status` lists the growths). Adding seeds or "
            "cells after looking at a p-value inflates the false-positive rate: read the p-values of cells "
            "with `added_later` above 0 as exploratory, and confirm them on a fresh sweep."
        )
    return section


def paired_accuracies(trials: pd.DataFrame, cells: Sequence[str]) -> pd.DataFrame:
    """One row per pair whose sparse and dense trials are both done: the cell, depth, ratio and accuracies."""
    done = trials[trials["status"].eq("done") & trials["role"].isin(["sparse", "dense"])]
    if done.empty:
        return pd.DataFrame()
    keys = ["pair_id", *cells]
    sparse = done[done["role"] == "sparse"].set_index("pair_id")
    dense = done[done["role"] == "dense"].set_index("pair_id")
    common = sparse.index.intersection(dense.index)
    if common.empty:
        return pd.DataFrame()
    frame = sparse.loc[
        common, [c for c in keys if c != "pair_id"] + ["depth", "seed", "active_weights"]
    ].copy()
    frame["sparse_acc"] = sparse.loc[common, "test_acc"]
    frame["dense_acc"] = dense.loc[common, "test_acc"]
    widths = {pair: _dense_width(row) for pair, row in dense.loc[common].iterrows()}  # one dense, many pairs
    frame["dense_width"] = frame.index.map(widths)
    if "capacity_mismatch" in sparse:
        frame["capacity_mismatch"] = sparse.loc[common, "capacity_mismatch"]
    dense_grown = _grown(dense.loc[common]).reindex(frame.index)  # a dense reference may pair several
    frame["added_later"] = _grown(sparse.loc[common]).to_numpy() | dense_grown.to_numpy()
    return frame.reset_index()


def _dense_width(row: pd.Series) -> int | None:
    """The dense partner's width: its hidden width (mlp, cnn), else its `model.width_key` knob."""
    widths = row.get("widths")
    if isinstance(widths, list | tuple | np.ndarray) and len(widths):
        return int(widths[0])
    model = json.loads(row.get("config") or "{}").get("model") or {}
    node = model
    for name in (model.get("width_key") or "").split("."):
        node = node.get(name) if isinstance(node, dict) else None
    return node if isinstance(node, int) and not isinstance(node, bool) else None


def _mismatch_line(pairs: pd.DataFrame) -> str | None:
    """One line on the largest capacity mismatch of a pair (total matching), where any is not zero."""
    mismatch = pairs["capacity_mismatch"].dropna() if "capacity_mismatch" in pairs else pd.Series(dtype=float)
    if not mismatch.ne(0).any():
        return None
    worst, inexact = float(mismatch.loc[mismatch.abs().idxmax()]), int(mismatch.ne(0).sum())
    return (
        "Capacities match in total, to whole widths and whole active weights: the largest mismatch is "
        f"{worst * 100:+.2g}% of the dense partner's weights (`trials.capacity_mismatch`, (sparse active "
        f"− dense weights) / dense weights; {inexact} of {len(mismatch)} pairs are not exact)."
    )


def _grown(trials: pd.DataFrame) -> pd.Series:
    """Trials a growth of the sweep added (after its first run)."""
    generation = trials["generation"] if "generation" in trials else pd.Series(0, index=trials.index)
    return generation.fillna(0).astype(int).gt(0)


def pair_verdicts(pairs: pd.DataFrame, cells: Sequence[str]) -> pd.DataFrame:
    """Per cell and over all pairs: pairs, share of sparse wins, mean accuracies, one-sided p-values."""
    groups = list(pairs.groupby(list(cells), sort=True, dropna=False)) if cells else []
    rows = [
        {**dict(zip(cells, key if isinstance(key, tuple) else (key,), strict=True)), **_paired_test(group)}
        for key, group in groups
    ]
    rows.append({**dict.fromkeys(cells, "all"), **_paired_test(pairs)})
    return pd.DataFrame(rows)


def _paired_test(pairs: pd.DataFrame) -> dict:
    diff = (pairs["sparse_acc"] - pairs["dense_acc"]).to_numpy()
    nonzero = diff[diff != 0]
    wins = int((diff > 0).sum())
    p_sign = stats.binomtest(wins, len(nonzero), 0.5, alternative="greater").pvalue if len(nonzero) else 1.0
    p_wilcoxon = stats.wilcoxon(diff, alternative="greater").pvalue if len(nonzero) else 1.0
    return {
        "pairs": len(diff),
        "added_later": int(pairs["added_later"].sum()) if "added_later" in pairs else 0,
        "sparse_wins": wins / len(diff),
        "sparse_acc": pairs["sparse_acc"].mean(),
        "dense_acc": pairs["dense_acc"].mean(),
        "p_wilcoxon": float(p_wilcoxon),
        "p_sign": float(p_sign),
    }


def _accuracy_points(trials: pd.DataFrame, cells: Sequence[str]) -> pd.DataFrame:
    done = trials[trials["status"].eq("done") & trials["role"].isin(["sparse", "dense"])]
    keys = [*cells, "role", "depth", "active_weights"]
    grouped = done.groupby(keys, dropna=False)["test_acc"]
    points = grouped.agg(["mean", "min", "max", "count"]).reset_index()
    return points.rename(columns={"mean": "test_acc", "min": "acc_min", "max": "acc_max", "count": "seeds"})


def _plot_sc_sdc(points: pd.DataFrame, cells: Sequence[str], path: Path) -> None:
    groups = list(points.groupby(list(cells), dropna=False)) if cells else [("all", points)]
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False, sharey=True)
    colours = {"sparse": "tab:blue", "dense": "tab:orange"}
    for ax, (key, group) in zip(axes.flat, groups, strict=False):
        for (role, depth), line in group.groupby(["role", "depth"], dropna=False):
            line = line.sort_values("active_weights")
            known = not pd.isna(depth)  # a model of another family than mlp and cnn has no depth column
            style = ["-", "--", ":", "-."][(int(depth) - 1) % 4] if known else "-"
            ax.plot(
                line["active_weights"],
                line["test_acc"],
                style,
                marker="o",
                ms=3,
                color=colours[role],
                label=f"{role}, depth {depth}" if known else role,
            )
            ax.fill_between(
                line["active_weights"], line["acc_min"], line["acc_max"], color=colours[role], alpha=0.15
            )
        log_axis(ax)
        ax.set_xlabel("active weights")
        ax.set_title(cell_title(cells, key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)
