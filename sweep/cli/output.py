"""How the `sweep` command prints tables: aligned text, CSV or JSON."""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from typing import TextIO

import numpy as np
import pandas as pd


def print_frame(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        plain_lists(frame).to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("(no rows)" if len(frame.columns) else "(ok)")
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
            print(plain_lists(frame).to_string(index=False))


def plain_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """List and struct cells (DuckDB hands them over as NumPy arrays and dicts) as JSON text, so that a CSV
    reader gets `[0.05, 0.05, 1.0]` back with `json.loads`, and a table shows the same."""
    nested = [c for c in frame.columns if frame[c].dtype == object and frame[c].map(_is_nested).any()]
    if not nested:
        return frame
    return frame.assign(**{c: frame[c].map(_as_json) for c in nested})


def _is_nested(value: object) -> bool:
    return isinstance(value, list | tuple | dict | np.ndarray)


def _as_json(value: object) -> object:
    return json.dumps(_plain(value), default=_scalar) if _is_nested(value) else value


def _scalar(value: object) -> object:
    """What JSON has no type for: decimals as numbers, anything else (dates, UUIDs) as its text."""
    return float(value) if isinstance(value, Decimal) else str(value)


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class QuietPipe:
    """Standard output that goes quiet when its reader goes away (`sweep run ... | head`): the first write
    into the closed pipe points the stream at /dev/null, so that the command, a sweep included, runs on to its
    end without a `BrokenPipeError` from any print, in any thread. Everything else is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_reader = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)

    def _silence(self) -> None:
        self.closed_reader = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
            self._stream.flush()  # what was waiting in the buffer goes to /dev/null now
        except (OSError, ValueError, AttributeError):  # not a file (a test's capture): nothing to point
            pass
