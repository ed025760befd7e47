"""Readable summaries of a sweep's `trials` rows: the leaderboard and the timing line."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sweep.store.sweep_state import SweepState
    from sweep.store.tables import ResultsStore

LEADERBOARD = (
    "trial_key",
    "role",
    "status",
    "test_acc",
    "val_acc",
    "active_weights",
    "density",
    "densities",
    "egf",
    "wall_s",
)


def leaderboard(rows: Sequence[dict], metric: str, top: int = 10) -> pd.DataFrame:
    """The best trials by `metric`, with the columns people compare first. Failed trials, and SNAS trials
    over the search's active-weight budget (`feasible` false), come last; superseded baselines are left
    out."""
    rows = [row for row in rows if not row.get("superseded")]
    if not rows:
        return pd.DataFrame(columns=["rank", *LEADERBOARD])
    frame = pd.DataFrame(list(rows))
    within_budget = np.array([is_feasible(r) for r in rows], dtype=bool)
    frame["_ok"] = frame["status"].isin(["done", "stopped"]) & within_budget
    frame = frame.sort_values(["_ok", metric], ascending=[False, False], na_position="last").head(top)
    frame["densities"] = frame["densities"].map(
        lambda ds: "[" + ", ".join(f"{d:.3g}" for d in ds) + "]" if ds is not None else None
    )
    frame["active_weights"] = frame["active_weights"].astype("Int64")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    columns = ["rank", *(c for c in LEADERBOARD if c in frame.columns)]
    if metric not in LEADERBOARD:
        columns.insert(4, metric)
    if not all(is_feasible(r) for r in rows):
        columns.insert(columns.index("status") + 1, "feasible")
    return frame[columns].round({"test_acc": 4, "val_acc": 4, "density": 4, "egf": 4, "wall_s": 1})


def timing_line(rows: Sequence[dict], wall_s: float) -> str:
    """Wall time against the sum of the trials' own times: how parallel the sweep was."""
    total = sum(r["wall_s"] or 0.0 for r in rows)
    ratio = f", {total / wall_s:.1f}x parallel" if wall_s > 0 and total else ""
    return f"{len(rows)} trials: {wall_s:.1f}s wall, {total:.1f}s of trial time{ratio}"


def status_data(store: ResultsStore, name: str | None) -> tuple[dict[str, list[dict]], dict[str, SweepState]]:
    """The `trials` rows and states of one sweep (or all), by sweep, in few requests: one listing per table
    and each `trials` file read once. A damaged file or manifest, whichever table it is in, is one line that
    names it: `epochs` and `layers` are judged by their listings and manifests, not read."""
    if name:
        states = {name: state} if (state := store.sweep_state(name)) else {}
    else:
        states = {state.name: state for state in store.sweep_states()}
    rows: dict[str, list[dict]] = {sweep: [] for sweep in states}
    for row in store.read("trials", name).to_pylist():
        rows.setdefault(row.pop("sweep"), []).append(row)
    for table in ("epochs", "layers"):
        store.listed(table, name)
    return rows, states


def status_table(rows_by_sweep: dict[str, list[dict]], states: dict[str, SweepState]) -> pd.DataFrame:
    """One line per sweep: kind, stage, trials by status, the best so far and the last update."""
    lines = []
    for name in sorted(set(rows_by_sweep) | set(states)):
        rows = rows_by_sweep.get(name, [])
        state = states.get(name)
        spec = state.spec if state else {}
        kind = spec.get("kind") or (rows[0]["kind"] if rows else "-")
        metric = sweep_metric(spec, kind)
        counts = pd.Series([r["status"] for r in rows], dtype="object").value_counts()
        scores = [
            r[metric] for r in rows if r["status"] == "done" and is_feasible(r) and r.get(metric) is not None
        ]
        ended = [r["ended_at"] for r in rows if r.get("ended_at") is not None]
        lines.append(
            {
                "sweep": name,
                "kind": kind,
                "stage": _stage(state),
                "growths": state.generation if state else 0,
                "trials": len(rows),
                **{status: int(counts.get(status, 0)) for status in ("done", "stopped", "diverged", "error")},
                "best": f"{metric} {max(scores):.4f}" if scores else "-",
                "updated": max(ended).strftime("%Y-%m-%d %H:%M") if ended else "-",
            }
        )
    return pd.DataFrame(lines)


def _stage(state: SweepState | None) -> str:
    if state is None:
        return "-"
    return "complete" if state.done else f"{state.stage}: running or interrupted"


def history_lines(state: SweepState) -> list[str]:
    """A sweep's runs, one line each: the first run and every growth, with what changed, how many trials
    it added and trained, and the versions it ran with."""
    lines = []
    for entry in state.history:
        what = "; ".join(entry.changes) if entry.changes else "the first run"
        added, trained = entry.trials_added, entry.trials_trained
        count = f"{added} trials added, {trained} trained" if added is not None else "running or interrupted"
        versions = ", ".join(f"{name} {v}" for name, v in entry.versions.items() if v)
        lines.append(f"  {entry.generation}  {entry.started_at[:19]}  {what}: {count} ({versions})")
    return lines


def sweep_metric(spec: dict, kind: str) -> str:
    """The metric a sweep ranks by: the search's for SNAS, test accuracy otherwise."""
    return (spec.get("search") or {}).get("metric", "val_acc") if kind == "snas" else "test_acc"


def best_row(rows: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any]:
    """The best of finished rows by `metric`; a tie goes to fewer active weights, then to the lower key (so
    the best stays the best when a sweep grows and its rows come in another order)."""
    return min(rows, key=lambda r: (-r[metric], r.get("active_weights") or 0, r["trial_key"]))


def is_feasible(row: Mapping[str, Any]) -> bool:
    """False only for an SNAS trial over `search.max_active_weights`: it is shown but never ranked best."""
    return row.get("feasible") is not False


def pareto_keys(rows: Sequence[Mapping[str, Any]], metric: str) -> set[str]:
    """Trials no other finished trial beats on both accuracy (up) and active weights (down)."""
    usable = [
        r
        for r in rows
        if r["status"] == "done" and r.get(metric) is not None and math.isfinite(r[metric]) and is_feasible(r)
    ]
    front = set()
    for row in usable:
        dominated = any(
            other[metric] >= row[metric]
            and other["active_weights"] <= row["active_weights"]
            and (other[metric] > row[metric] or other["active_weights"] < row["active_weights"])
            for other in usable
        )
        if not dominated:
            front.add(row["trial_key"])
    return front


def done_keys(store: ResultsStore, sweep: str) -> set[str]:
    """The keys of the sweep's trials that finished (none in a store that does not exist yet)."""
    if not store.exists():
        return set()
    rows = store.read("trials", sweep, columns=["trial_key", "status"]).to_pylist()
    return {row["trial_key"] for row in rows if row["status"] == "done"}
