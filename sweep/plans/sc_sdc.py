"""SC-SDC: Same Capacity Sparse vs Dense Comparison grids (pure Python, no Ray).

For a sparse width w_S and a ratio r, the dense partner has width w_D = round(r × w_S). The sparse net keeps,
in every layer, exactly as many active weights as the dense layer has weights: density w_D/w_S for the input
layer and the output layer, (w_D/w_S)² between hidden layers (for a CNN the same rule holds for channels).
Its active weights are drawn from the dense layer's distribution (`model.init_widths`). Each pair shares its
seed and every other setting, and records `capacity_mismatch` 0.0 (the capacities match exactly).

With `grid.match: total` (any model family) a pair matches its total of weights: `plans/total_match.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from sweep.errors import SpecError
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import GridSpec, SweepSpec, axis_keys, with_settings


def dense_width(sparse_width: int, ratio: float) -> int:
    return max(1, round(ratio * sparse_width))


def pair_densities(depth: int, sparse_width: int, dense_width: int) -> list[float]:
    """Per-layer densities of the sparse net: input, depth-1 hidden-to-hidden layers, output."""
    share = dense_width / sparse_width
    return [share] + [share * share] * (depth - 1) + [share]


def sc_sdc_trials(spec: SweepSpec) -> list[PlannedTrial]:
    """Every sparse network of the grid and its same-capacity dense partner, pair by pair.

    `pair_id` is the dense partner's trial key: a dense net has no mask method, so the cells of a
    `sparsity.method` axis share one dense partner (trained once) and every sparse net names it."""
    grid = spec.grid
    if grid.match == "total":
        from sweep.plans.total_match import total_match_trials  # it builds on this module's cells

        return total_match_trials(spec)
    planned: list[PlannedTrial] = []
    for ratio, depth, seed, settings in cells(grid, grid.ratios, grid.depths):
        w_sparse, w_dense = grid.sparse_width, dense_width(grid.sparse_width, ratio)
        cell = {"ratio": ratio, "depth": depth, "seed": seed, **settings}
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
        configs = {}
        for role, settings_for_role in (("sparse", sparse), ("dense", dense)):
            try:
                configs[role] = with_settings(spec.trial, settings_for_role)
            except SpecError as exc:
                raise SpecError(f"grid: the cell {cell} gives an invalid trial: {exc}") from None
        pair_id = configs["dense"].key
        planned += [
            PlannedTrial(config, TrialMeta(kind="sc_sdc", role=role, pair_id=pair_id, capacity_mismatch=0.0))
            for role, config in configs.items()
        ]
    return planned


def cells(grid: GridSpec, *leading: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """Every combination of the `leading` lists, the seeds and the axes' values, the axes as settings
    (`a+b` axes set several settings at once)."""
    axes = dict(grid.axes)
    for combination in itertools.product(*leading, grid.seeds, *axes.values()):
        values, seed, axis_values = (
            combination[: len(leading)],
            combination[len(leading)],
            combination[len(leading) + 1 :],
        )
        settings: dict[str, Any] = {}
        for name, value in zip(axes, axis_values, strict=True):
            keys = axis_keys(name)
            settings.update(dict(zip(keys, value, strict=True)) if len(keys) > 1 else {name: value})
        yield (*values, seed, settings)
