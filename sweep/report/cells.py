"""Grid cells: which `trials` columns name a cell of an SC-SDC grid, and how a cell is titled."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sweep.spec import axis_keys

_COLUMN_OF = {"dataset.name": "dataset", "egf.samples": "egf_samples", "egf.mode": "egf_mode"}


def cell_columns(spec: dict, trials: pd.DataFrame) -> list[str]:
    axes = (spec.get("grid") or {}).get("axes") or {}
    columns = [_COLUMN_OF.get(key, key.split(".", 1)[-1]) for axis in axes for key in axis_keys(axis)]
    return [c for c in columns if c in trials.columns]


def cell_title(cells: Sequence[str], key: object) -> str:
    if not cells:
        return "all pairs"
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{c}={v}" for c, v in zip(cells, values, strict=True))
