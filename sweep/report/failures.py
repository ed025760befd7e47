"""Failed trials: which ones, and the error each ended with."""

from __future__ import annotations

import pandas as pd

from sweep.report.markdown import Section

MESSAGE_CHARS = 200


def failures_section(trials: pd.DataFrame) -> Section | None:
    """A short table of the trials that ended with an error (None when there are none)."""
    failed = trials[trials["status"].eq("error") | trials["error"].notna()]
    if failed.empty:
        return None
    section = Section("Failed trials")
    table = failed[["trial_key", "role", "status", "error"]].assign(
        error=failed["error"].map(_first_line), role=failed["role"].fillna("-")
    )
    section.tables.append(("failed_trials", table.reset_index(drop=True)))
    section.lines.append(
        f"{len(failed)} of {len(trials)} trials ended with an error; each row gives the first line of its "
        "message (the whole message is in `trials.error`)."
    )
    return section


def _first_line(message: object) -> str:
    if message is None or pd.isna(message):
        return "-"
    line = (str(message).strip().splitlines() or ["-"])[0]
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"
