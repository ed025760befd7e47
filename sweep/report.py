"""`sweep report`: figures and a `report.md` from a sweep's tables (never from the trainer).

Each section draws what the tables hold and says plainly what is missing:
- SC-SDC: accuracy against active weights for sparse and dense nets (band over seeds), and per grid cell the
  share of pairs where sparse beats its dense partner with one-sided paired tests (Wilcoxon, sign test);
- training dynamics (SC-SDC): mean test accuracy and EGF per epoch for each grid cell and role, and the
  trials that collapsed (ended well below their best epoch) or diverged;
- gradient flow: EGF and the baselines against accuracy, with Kendall's tau against test accuracy and loss,
  separately for sparse and dense nets (the paper's comparison);
- SNAS: the Pareto front of accuracy against active weights, the best trials' per-layer densities, and
  accuracy over the search;
- training curves: test accuracy and EGF per epoch for the top trials.
Every figure's numbers are also written as a table in the report and as a CSV file beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from scipy import stats

from sweep.errors import UserError
from sweep.results import ResultsStore
from sweep.spec import axis_keys
from sweep.summary import is_feasible, pareto_keys, sweep_metric

MEASURES = ("gf1_mean", "gf2_mean", "egf1_mean", "egf2_mean")
SEARCH_ROLES = ("search", "warm_start")
TOP = 5
_COLUMN_OF = {"dataset.name": "dataset", "egf.samples": "egf_samples", "egf.mode": "egf_mode"}


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    figure: str | None = None
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def write_report(store: ResultsStore, name: str, out: Path) -> Path:
    """Write the figures, the CSV tables and `report.md` for one sweep; return the report's path."""
    trials = store.read("trials", name).to_pandas() if store.exists() else pd.DataFrame()
    if trials.empty:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"sweep {name!r} has no trials in {store.root} (sweeps there: {known})")
    epochs = store.read("epochs", name).to_pandas()
    state = store.sweep_state(name) or {}
    spec = state.get("spec", {})
    kind = str(trials["kind"].iloc[0])
    metric = sweep_metric(spec, kind)
    out.mkdir(parents=True, exist_ok=True)
    cells = _cell_columns(spec, trials)
    sections = [
        sc_sdc_section(trials, cells, out),
        dynamics_section(trials, epochs, cells, out),
        gradient_flow_section(trials, out),
        snas_section(trials, metric, out),
        curves_section(trials, epochs, metric, out),
    ]
    path = out / "report.md"
    path.write_text(_markdown(name, kind, trials, store.root, sections, out))
    return path


# ------------------------------------------------------------------------------------------------ SC-SDC


def sc_sdc_section(trials: pd.DataFrame, cells: list[str], out: Path) -> Section:
    section = Section("SC-SDC: sparse against dense at the same capacity")
    pairs = paired_accuracies(trials, cells)
    if pairs.empty:
        section.lines.append(
            "Not an SC-SDC sweep, or no pair has both its sparse and its dense trial done: "
            "nothing to compare."
        )
        return section
    verdicts = pair_verdicts(pairs, cells)
    section.tables.append(("sc_sdc_tests", verdicts))
    by_width = pair_verdicts(pairs, [*cells, "dense_width"]).iloc[:-1]  # its last row repeats "all"
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
    frame["dense_width"] = dense.loc[common, "widths"].map(lambda w: int(w[0]))
    return frame.reset_index()


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
        for (role, depth), line in group.groupby(["role", "depth"]):
            line = line.sort_values("active_weights")
            style = ["-", "--", ":", "-."][(int(depth) - 1) % 4]
            ax.plot(
                line["active_weights"],
                line["test_acc"],
                style,
                marker="o",
                ms=3,
                color=colours[role],
                label=f"{role}, depth {depth}",
            )
            ax.fill_between(
                line["active_weights"], line["acc_min"], line["acc_max"], color=colours[role], alpha=0.15
            )
        _log_x(ax)
        ax.set_xlabel("active weights")
        ax.set_title(_cell_title(cells, key), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7)
    _save(fig, path)


def _cell_columns(spec: dict, trials: pd.DataFrame) -> list[str]:
    axes = (spec.get("grid") or {}).get("axes") or {}
    columns = [_COLUMN_OF.get(key, key.split(".", 1)[-1]) for axis in axes for key in axis_keys(axis)]
    return [c for c in columns if c in trials.columns]


def _cell_title(cells: Sequence[str], key: object) -> str:
    if not cells:
        return "all pairs"
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{c}={v}" for c, v in zip(cells, values, strict=True))


# ---------------------------------------------------------------------------------- training dynamics


COLLAPSE = 0.05  # a trial "collapsed" when it ends this far (in test accuracy) below its own best epoch


def dynamics_section(trials: pd.DataFrame, epochs: pd.DataFrame, cells: list[str], out: Path) -> Section:
    """Per grid cell and role: mean test accuracy and EGF over the epochs, and late collapses."""
    section = Section("Training dynamics per cell")
    grid = trials[trials["role"].isin(["sparse", "dense"])]
    if grid.empty:
        section.lines.append("Not an SC-SDC sweep: no sparse and dense trials to follow.")
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
        f"than {COLLAPSE:.0%} below the best it reached; egf_mean is the trials' egf2_mean, EGF averaged "
        "over training."
    )
    return section


def _plot_dynamics(mean: pd.DataFrame, keys: list[str], path: Path) -> None:
    fig, (acc_ax, egf_ax) = plt.subplots(1, 2, figsize=(13, 4.4))
    groups = list(mean.groupby(keys[:-1], dropna=False)) if len(keys) > 1 else [("all", mean)]
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    for i, (key, group) in enumerate(groups):
        for role, line in group.groupby("role"):
            style = "-" if role == "sparse" else "--"
            label = f"{_cell_title(keys[:-1], key) if len(keys) > 1 else 'all'}, {role}"
            trained = line[line["epoch"] > 0]  # the untrained net's ~chance accuracy would flatten the rest
            acc_ax.plot(trained["epoch"], trained["test_acc"], style, color=colours[i % 10], label=label)
            egf_ax.plot(line["epoch"], line["egf"], style, color=colours[i % 10], label=label)
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy from epoch 1 (mean per cell)")
    egf_ax.set(xlabel="epoch", ylabel="EGF", title="effective gradient flow (mean per cell)", yscale="log")
    for ax in (acc_ax, egf_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    egf_ax.legend(fontsize=6, ncol=2, loc="best")
    _save(fig, path)


# --------------------------------------------------------------------------------------- gradient flow


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
        _log_x(ax)
        ax.set_xlabel(f"{name}, mean over training")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    _save(fig, path)


# ------------------------------------------------------------------------------------------------- SNAS


def snas_section(trials: pd.DataFrame, metric: str, out: Path) -> Section:
    section = Section("SNAS: the search")
    search = trials[trials["role"].isin(SEARCH_ROLES)].copy()
    if search.empty:
        section.lines.append("Not an SNAS sweep: no search trials in the tables.")
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
    finished = trials[trials["status"].eq("done")]
    baselines = finished[finished["role"].fillna("").str.startswith("baseline_")]
    reseeded = finished[finished["role"].eq("best_reseeded")]
    paired = done[done["trial_key"].isin(baselines["pair_id"])]  # the trial the baselines were sized on
    comparison = baseline_comparison(paired if len(paired) else best.head(1), reseeded, baselines, metric)
    plotted = comparison if not baselines.empty else comparison[:0]
    _plot_snas(done, best, plotted, metric, out / section.figure)
    columns = ["trial", "trial_key", "role", metric, "test_acc", "active_weights", "densities", "on_front"]
    top = best[columns].assign(densities=best["densities"].map(_densities))
    section.tables.append(("snas_best", top))
    front_table = done[done["on_front"]].sort_values("active_weights")[columns[:-1]]
    section.tables.append(
        ("snas_front", front_table.assign(densities=front_table["densities"].map(_densities)))
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
    return table.assign(densities=table["densities"].map(_densities))


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
    for _, row in baselines.iterrows():  # each role's mean over its seeds
        front_ax.scatter(
            row["active_weights"],
            row[metric],
            marker="s",
            s=30,
            label=f"{str(row['role']).removeprefix('baseline_')} ({row['seeds']} seeds)",
        )
    _log_x(front_ax)
    front_ax.set(xlabel="active weights", ylabel=metric, title="accuracy against size")
    front_ax.legend(fontsize=7)
    width = 0.8 / max(1, len(best))
    depth = max(len(d) for d in best["densities"])
    for i, (_, row) in enumerate(best.iterrows()):
        offset = (i - (len(best) - 1) / 2) * width
        label = f"trial {row['trial']}: {row[metric]:.3f}"
        bars_ax.bar(np.arange(len(row["densities"])) + offset, row["densities"], width=width, label=label)
    bars_ax.set_xticks(range(depth), [*(f"hidden {i}" for i in range(depth - 1)), "output"])
    bars_ax.set(ylabel="density", title=f"per-layer densities of the top {len(best)}")
    bars_ax.legend(fontsize=7)
    progress_ax.plot(inside["trial"], inside[metric], "o", ms=4, color="tab:gray")
    progress_ax.plot(over["trial"], over[metric], "x", ms=4, color="tab:gray")
    best_so_far = done[metric].where(done["within_budget"]).cummax().ffill()  # over-budget trials: no change
    progress_ax.plot(done["trial"], best_so_far, "-", color="tab:green", label="best so far")
    progress_ax.set(xlabel="trial", ylabel=metric, title="the search over time")
    progress_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    progress_ax.legend(fontsize=7)
    for ax in (front_ax, bars_ax, progress_ax):
        ax.grid(alpha=0.3)
    _save(fig, path)


def _densities(values: Sequence[float] | None) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]" if values is not None else ""


# ---------------------------------------------------------------------------------------------- curves


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
    _save(fig, out / section.figure)
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


# ---------------------------------------------------------------------------------------------- output


def _markdown(
    name: str, kind: str, trials: pd.DataFrame, root: str, sections: list[Section], out: Path
) -> str:
    counts = trials["status"].value_counts().to_dict()
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines = [
        f"# Sweep report: {name}",
        "",
        f"Kind `{kind}`, {len(trials)} trials ({status}), from the tables in `{root}`; written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `sweep report`.",
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.figure:
            lines += [f"![{section.title}]({section.figure})", ""]
        lines += [*(f"{line}" for line in section.lines), ""]
        for table_name, table in section.tables:
            table.to_csv(out / f"{table_name}.csv", index=False)
            lines += [f"Table `{table_name}` (also in `{table_name}.csv`):", "", _md_table(table), ""]
    return "\n".join(lines)


def _md_table(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.4g}" if math.isfinite(value) else str(value)
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _log_x(ax: plt.Axes) -> None:
    """A log axis with plain tick labels at 1, 2 and 5 times powers of ten (readable over narrow ranges)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.6g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelsize=8, labelrotation=30)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
