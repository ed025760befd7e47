"""Readable summaries of a sweep's `trials` rows: the leaderboard and the timing line."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

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
    """The best trials by `metric` (failed ones last), with the columns people compare first."""
    if not rows:
        return pd.DataFrame(columns=["rank", *LEADERBOARD])
    frame = pd.DataFrame(list(rows))
    frame["_ok"] = frame["status"].isin(["done", "stopped"])
    frame = frame.sort_values(["_ok", metric], ascending=[False, False], na_position="last").head(top)
    frame["densities"] = frame["densities"].map(
        lambda ds: "[" + ", ".join(f"{d:.3g}" for d in ds) + "]" if ds is not None else None
    )
    frame["active_weights"] = frame["active_weights"].astype("Int64")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    columns = ["rank", *(c for c in LEADERBOARD if c in frame.columns)]
    if metric not in LEADERBOARD:
        columns.insert(4, metric)
    return frame[columns].round({"test_acc": 4, "val_acc": 4, "density": 4, "egf": 4, "wall_s": 1})


def timing_line(rows: Sequence[dict], wall_s: float) -> str:
    """Wall time against the sum of the trials' own times: how parallel the sweep was."""
    total = sum(r["wall_s"] or 0.0 for r in rows)
    ratio = f", {total / wall_s:.1f}x parallel" if wall_s > 0 and total else ""
    return f"{len(rows)} trials: {wall_s:.1f}s wall, {total:.1f}s of trial time{ratio}"
