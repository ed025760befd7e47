"""The report's page: sections (text, a figure, tables) written as `report.md`, each table also as CSV."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Section:
    """One part of the report: its title, its text, its figure and the tables behind it."""

    title: str
    lines: list[str] = field(default_factory=list)
    figure: str | None = None
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def header(name: str, kind: str, trials: pd.DataFrame, root: str) -> list[str]:
    """The report's title and the line that says what it was written from, and when."""
    counts = trials["status"].value_counts().to_dict()
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return [
        f"# Sweep report: {name}",
        "",
        f"Kind `{kind}`, {len(trials)} trials ({status}), from the tables in `{root}`; written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `sweep report`.",
        "",
    ]


def markdown(title: list[str], sections: list[Section], out: Path, left_out: list[str] | None = None) -> str:
    """The report's text under `title` (`header`); each section's tables written beside it as CSV."""
    lines = list(title)
    if left_out:
        lines += [f"Left out, as they belong to other kinds of sweep: {'; '.join(left_out)}.", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.figure:
            lines += [f"![{section.title}]({section.figure})", ""]
        lines += [*(f"{line}" for line in section.lines), ""]
        for table_name, table in section.tables:
            table.to_csv(out / f"{table_name}.csv", index=False)
            lines += [f"Table `{table_name}` (also in `{table_name}.csv`):", "", md_table(table), ""]
    return "\n".join(lines)


def md_table(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.4g}" if math.isfinite(value) else str(value)
        return " ".join(str(value).split()).replace("|", "\\|")  # one line, and no stray column

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
