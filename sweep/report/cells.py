"""Grid cells: which `trials` columns name a cell of an SC-SDC grid, and how a cell is titled."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sweep.spec import axis_keys

_COLUMN_OF = {
    "dataset.name": "dataset",
    "egf.samples": "egf_samples",
    "egf.mode": "egf_mode",
    "model.densities": "density",  # the overall density: `densities` lists every layer's
}


def cell_columns(spec: dict, trials: pd.DataFrame) -> list[str]:
    axes = (spec.get("grid") or {}).get("axes") or {}
    columns = [_COLUMN_OF.get(key, key.split(".", 1)[-1]) for axis in axes for key in axis_keys(axis)]
    return [c for c in columns if c in trials.columns]


def hashable_cells(trials: pd.DataFrame, cells: Sequence[str]) -> pd.DataFrame:
    """The trials with list-valued cell columns (widths, say) as text, so cells can be grouped."""
    lists = [
        c for c in cells if trials[c].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any()
    ]
    if not lists:
        return trials
    return trials.assign(
        **{c: trials[c].map(lambda v: str(list(v)) if v is not None else None) for c in lists}
    )


def cell_title(cells: Sequence[str], key: object) -> str:
    if not cells:
        return "all pairs"
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{c}={v}" for c, v in zip(cells, values, strict=True))
