"""Plain grids (`kind: grid`): every combination of `grid.axes` at every seed, one trial each.

With `grid.dense_reference: true`, each sparse trial also gets the dense net of the same capacity: the same
depth, the hidden widths scaled together (their proportions kept) so that its weights come as close as whole
widths allow to the sparse net's active weights. Both carry that dense net's trial key as `pair_id`, so the
report pairs them as it pairs SC-SDC's nets. (SC-SDC matches every layer exactly, which only its wide-sparse
construction can; a plain grid keeps the spec's architecture, so only the total can match.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from sweep.core.data import dataset_shape
from sweep.core.masks import active_weights, layer_densities
from sweep.core.models import weight_shapes
from sweep.errors import SpecError
from sweep.plans.sc_sdc import cells
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import ModelSpec, SweepSpec, TrialConfig, with_settings


def grid_trials(spec: SweepSpec) -> list[PlannedTrial]:
    planned: list[PlannedTrial] = []
    for seed, settings in cells(spec.grid):
        try:
            config = with_settings(spec.trial, {**settings, "train.seed": seed})
        except SpecError as exc:
            raise SpecError(f"grid: the cell {settings} gives an invalid trial: {exc}") from None
        dense = config.model.mask == "dense"
        if not spec.grid.dense_reference or dense:
            planned.append(PlannedTrial(config, TrialMeta("grid", "dense" if dense else "sparse")))
            continue
        reference = dense_reference(config)
        planned += [
            PlannedTrial(config, TrialMeta("grid", "sparse", reference.key)),
            PlannedTrial(reference, TrialMeta("grid", "dense", reference.key)),
        ]
    return planned


def dense_reference(config: TrialConfig) -> TrialConfig:
    """The dense net with the sparse trial's depth and about its active weights (width proportions kept)."""
    input_shape, classes = dataset_shape(config.dataset)
    model = config.model
    shapes = weight_shapes(model, input_shape, classes)
    target = active_weights(layer_densities(model.mask, model.densities, shapes), shapes)
    widths = same_capacity_widths(model, input_shape, classes, target)
    settings = {
        "model.widths": widths,
        "model.mask": "dense",
        "model.densities": 1.0,
        "model.init_widths": None,
    }
    return with_settings(config, settings)


def same_capacity_widths(
    model: ModelSpec, input_shape: Sequence[int], classes: int, target: int
) -> list[int]:
    """Hidden widths c·w (at least 1 each) whose dense weights are closest to `target`."""

    def weights(scale: float) -> int:
        widths = tuple(max(1, round(scale * w)) for w in model.widths)
        shapes = weight_shapes(dataclasses.replace(model, widths=widths), input_shape, classes)
        return sum(math.prod(s) for s in shapes)

    low, high = 0.0, 1.0
    while weights(high) < target:
        high *= 2
    for _ in range(60):  # weights(scale) only grows with scale: bisect it
        middle = (low + high) / 2
        low, high = (middle, high) if weights(middle) < target else (low, middle)
    best = min((low, high), key=lambda scale: abs(weights(scale) - target))
    return [max(1, round(best * w)) for w in model.widths]
