"""SNAS baselines: what the search bought, trained at the best trial's active-weight count."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sweep.core.models import weight_shapes
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import parse_trial, with_settings


def baseline_trials(
    best: Mapping[str, Any], input_shape: Sequence[int], num_classes: int, seeds: Sequence[int] = ()
) -> list[PlannedTrial]:
    """What the search bought: at the best trial's active-weight count, the uniform and ERK allocations and a
    dense net of the same depth (its SC-SDC partner); and the best trial's own architecture fully dense
    (`baseline_full_dense`, the dense counterpart with every weight).

    Each is trained at every seed in `seeds` (the best trial's own seed when empty), and the best trial is
    trained again at the seeds other than its own (`best_reseeded`), so the comparison has a spread."""
    config = parse_trial(json.loads(best["config"]))
    budget = int(best["active_weights"])
    shapes = weight_shapes(config.model, input_shape, num_classes)
    overall = budget / sum(math.prod(s) for s in shapes)
    depth = len(config.model.widths)

    def dense_total(width: int) -> int:
        model = dataclasses.replace(config.model, widths=(width,) * depth)
        return sum(math.prod(s) for s in weight_shapes(model, input_shape, num_classes))

    width = min(range(1, max(config.model.widths) + 1), key=lambda w: abs(dense_total(w) - budget))
    meta = partial(TrialMeta, "snas", pair_id=best["trial_key"])
    common = {"model.init_widths": None}
    roles = {
        "baseline_uniform": {**common, "model.mask": "uniform", "model.densities": overall},
        "baseline_erk": {**common, "model.mask": "erk", "model.densities": overall},
        "baseline_dense": {
            **common,
            "model.widths": [width] * depth,
            "model.mask": "dense",
            "model.densities": 1.0,
        },
        "baseline_full_dense": {**common, "model.mask": "dense", "model.densities": 1.0},
    }
    planned = []
    for seed in seeds or (config.train.seed,):
        if seed != config.train.seed:
            again = with_settings(config, {"train.seed": seed})
            planned.append(PlannedTrial(again, meta(role="best_reseeded")))
        planned += [
            PlannedTrial(with_settings(config, {**settings, "train.seed": seed}), meta(role=role))
            for role, settings in roles.items()
        ]
    return planned
