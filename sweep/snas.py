"""SNAS: Sparse Neural Architecture Search over per-layer density levels, sampled by Optuna.

Our reconstruction of the thesis's method (its exact algorithm is not public): a define-by-run space holds
one density per weight layer, drawn from `search.density_levels`, and optionally the depth (1..max_depth) and
one hidden width from `search.widths`; a layer's density exists only if the layer does. Hidden layers are
`density_0 .. density_{depth-1}`, the output layer is `density_out`. Samplers: TPE (one objective), NSGA-II
(accuracy up, active weights down) and random. `max_active_weights` is a constraint set on each Optuna
trial (`Trial.set_constraint`), which the samplers respect; it is not a penalty on the objective. The
uniform and ERK allocations at `warm_start_density` are evaluated first, each density snapped to the
nearest level.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from sweep.masks import active_weights, erk_densities
from sweep.models import weight_shapes
from sweep.records import PlannedTrial, TrialMeta
from sweep.spec import SweepSpec, TrialConfig, config_to_dict, parse_trial, with_settings
from sweep.worker import PLANNED

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SearchTemplate:
    """What the define-by-run space needs; plain data, so the searcher pickles for resume."""

    base: TrialConfig
    levels: tuple[float, ...]
    max_depth: int | None
    widths: tuple[int, ...] | None
    input_shape: tuple[int, ...]
    num_classes: int
    max_active_weights: int | None = None
    warm_starts: tuple[tuple[tuple[str, Any], ...], ...] = ()

    def allocation(self, params: Mapping[str, Any]) -> tuple[list[int], list[float]]:
        """Hidden widths and per-layer densities from a set of search parameters."""
        base_widths = list(self.base.model.widths)
        depth = int(params.get("depth", len(base_widths)))
        if "width" in params:
            widths = [int(params["width"])] * depth
        else:
            widths = (base_widths + [base_widths[-1]] * depth)[:depth]
        densities = [float(params[f"density_{i}"]) for i in range(depth)] + [float(params["density_out"])]
        return widths, densities

    def config(self, params: Mapping[str, Any]) -> TrialConfig:
        widths, densities = self.allocation(params)
        return with_settings(
            self.base,
            {
                "model.widths": widths,
                "model.densities": densities,
                "model.mask": "uniform",
                "model.init_widths": None,
            },
        )

    def active_weights(self, params: Mapping[str, Any]) -> int:
        widths, densities = self.allocation(params)
        model = dataclasses.replace(self.base.model, widths=tuple(widths))
        return active_weights(densities, weight_shapes(model, self.input_shape, self.num_classes))


def make_template(spec: SweepSpec, input_shape: Sequence[int], num_classes: int) -> SearchTemplate:
    search = spec.search
    levels = tuple(sorted(set(search.density_levels)))
    template = SearchTemplate(
        spec.trial,
        levels,
        search.max_depth,
        search.widths,
        tuple(input_shape),
        num_classes,
        search.max_active_weights,
    )
    points = warm_start_points(template, search.warm_start_density) if search.warm_start_density else []
    return dataclasses.replace(template, warm_starts=tuple(tuple(sorted(p.items())) for p in points))


def define_space(trial: optuna.Trial, template: SearchTemplate) -> dict[str, Any]:
    """The define-by-run space: suggest the architecture, return the resolved trial as a constant."""
    params: dict[str, Any] = {}
    depth = len(template.base.model.widths)
    if template.max_depth:
        depth = params["depth"] = trial.suggest_int("depth", 1, template.max_depth)
    if template.widths:
        params["width"] = trial.suggest_categorical("width", list(template.widths))
    for i in range(depth):
        params[f"density_{i}"] = trial.suggest_categorical(f"density_{i}", list(template.levels))
    params["density_out"] = trial.suggest_categorical("density_out", list(template.levels))
    if template.max_active_weights:  # feasible when <= 0
        trial.set_constraint("active_weights", template.active_weights(params) - template.max_active_weights)
    role = "warm_start" if tuple(sorted(params.items())) in template.warm_starts else "search"
    return {PLANNED: planned_entry(PlannedTrial(template.config(params), TrialMeta("snas", role)))}


def planned_entry(planned: PlannedTrial) -> dict[str, Any]:
    """A planned trial as plain data for a Tune config."""
    return {"config": config_to_dict(planned.config), "meta": dataclasses.asdict(planned.meta)}


def warm_start_points(template: SearchTemplate, density: float) -> list[dict[str, Any]]:
    """Uniform and ERK allocations at `density` on the template's own architecture, snapped to the levels."""
    base = template.base.model
    depth = len(base.widths)
    shapes = weight_shapes(base, template.input_shape, template.num_classes)
    fixed: dict[str, Any] = {}
    if template.max_depth:
        fixed["depth"] = min(depth, template.max_depth)
        depth = fixed["depth"]
        shapes = shapes[:depth] + shapes[-1:]
    if template.widths:
        fixed["width"] = min(template.widths, key=lambda w: abs(w - base.widths[0]))
    points = []
    for allocation in ([density] * (depth + 1), erk_densities(density, shapes)):
        snapped = [min(template.levels, key=lambda level, d=d: abs(math.log(level / d))) for d in allocation]
        point = {**fixed, **{f"density_{i}": snapped[i] for i in range(depth)}, "density_out": snapped[-1]}
        if point not in points:
            points.append(point)
    return points


def make_searcher(spec: SweepSpec, template: SearchTemplate) -> OptunaSearch:
    search = spec.search
    metric: str | list[str] = search.metric
    mode: str | list[str] = "max"
    if search.sampler == "nsga2":
        population = min(50, max(4, search.num_samples // 3))
        sampler = optuna.samplers.NSGAIISampler(seed=search.seed, population_size=population)
        metric, mode = [search.metric, "active_weights"], ["max", "min"]
    elif search.sampler == "tpe":
        startup = max(2, min(10, search.num_samples // 4))
        sampler = optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=startup)
    else:
        sampler = optuna.samplers.RandomSampler(seed=search.seed)
    return OptunaSearch(
        space=partial(define_space, template=template),
        metric=metric,
        mode=mode,
        sampler=sampler,
        points_to_evaluate=[dict(point) for point in template.warm_starts] or None,
    )


def first_proposals(spec: SweepSpec, input_shape: Sequence[int], num_classes: int, n: int) -> list[dict]:
    """The first `n` trials the searcher proposes for a spec (what a sweep would start with)."""
    searcher = make_searcher(spec, make_template(spec, input_shape, num_classes))
    searcher.set_search_properties(None, None, {})
    proposals = [searcher.suggest(f"trial_{i}") for i in range(n)]
    return [{k: v for k, v in p.items() if k != PLANNED} for p in proposals]


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
