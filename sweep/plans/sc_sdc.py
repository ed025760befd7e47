"""SC-SDC: Same Capacity Sparse vs Dense Comparison grids (pure Python, no Ray).

For a sparse width w_S and a ratio r, the dense partner has width w_D = round(r × w_S). The sparse net keeps,
in every layer, exactly as many active weights as the dense layer has weights: density w_D/w_S for the input
layer and the output layer, (w_D/w_S)² between hidden layers (for a CNN the same rule holds for channels).
Its active weights are drawn from the dense layer's distribution (`model.init_widths`). Each pair shares its
seed and every other setting.
"""

from __future__ import annotations

import hashlib
import itertools
import json

from sweep.errors import SpecError
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import SweepSpec, axis_keys, with_settings


def dense_width(sparse_width: int, ratio: float) -> int:
    return max(1, round(ratio * sparse_width))


def pair_densities(depth: int, sparse_width: int, dense_width: int) -> list[float]:
    """Per-layer densities of the sparse net: input, depth-1 hidden-to-hidden layers, output."""
    share = dense_width / sparse_width
    return [share] + [share * share] * (depth - 1) + [share]


def sc_sdc_trials(spec: SweepSpec) -> list[PlannedTrial]:
    """Every sparse network of the grid and its same-capacity dense partner, pair by pair."""
    grid = spec.grid
    axes = dict(grid.axes)
    planned: list[PlannedTrial] = []
    for ratio, depth, seed, *values in itertools.product(
        grid.ratios, grid.depths, grid.seeds, *axes.values()
    ):
        settings = {}
        for name, value in zip(axes, values, strict=True):
            keys = axis_keys(name)
            settings.update(dict(zip(keys, value, strict=True)) if len(keys) > 1 else {name: value})
        w_sparse, w_dense = grid.sparse_width, dense_width(grid.sparse_width, ratio)
        cell = {"ratio": ratio, "depth": depth, "seed": seed, **settings}
        pair_id = hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:12]
        common = {**settings, "train.seed": seed}
        sparse = {
            **common,
            "model.widths": [w_sparse] * depth,
            "model.init_widths": [w_dense] * depth,
            "model.mask": "uniform",
            "model.densities": pair_densities(depth, w_sparse, w_dense),
        }
        dense = {
            **common,
            "model.widths": [w_dense] * depth,
            "model.init_widths": None,
            "model.mask": "dense",
            "model.densities": 1.0,
        }
        for role, settings_for_role in (("sparse", sparse), ("dense", dense)):
            try:
                config = with_settings(spec.trial, settings_for_role)
            except SpecError as exc:
                raise SpecError(f"grid: the cell {cell} gives an invalid trial: {exc}") from None
            planned.append(PlannedTrial(config, TrialMeta(kind="sc_sdc", role=role, pair_id=pair_id)))
    return planned
