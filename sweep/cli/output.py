"""How the `sweep` command prints tables: aligned text, CSV or JSON."""

from __future__ import annotations

import sys

import pandas as pd


def print_frame(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("(no rows)" if len(frame.columns) else "(ok)")
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
            print(frame.to_string(index=False))
