"""SNAS: Sparse Neural Architecture Search over per-layer density levels, sampled by Optuna.

Our reconstruction of the thesis's method (its exact algorithm is not public): a define-by-run space holds
one density per weight layer, drawn from `search.density_levels`, and optionally the depth (1..max_depth) and
one hidden width from `search.widths`; a layer's density exists only if the layer does. Hidden layers are
`density_0 .. density_{depth-1}`, the output layer is `density_out`. Samplers: TPE (one objective), NSGA-II
(accuracy up, active weights down) and random. `max_active_weights` is a constraint set on each Optuna
trial (`Trial.set_constraint`), which the samplers respect; it is not a penalty on the objective. The
uniform and ERK allocations at `warm_start_density` are evaluated first, each density snapped to the
nearest level. A model of another family (wrn, torchvision, timm, factory) is fixed: its space is one density
per masked layer or per group of layers (`plans/snas_layers.py`), and its warm start is every dimension at
`warm_start_density`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from sweep.core.masks import active_weights, erk_densities
from sweep.core.models import weight_shapes
from sweep.plans.snas_layers import LayerSpace, layer_space
from sweep.plans.types import PLANNED, PlannedTrial, TrialMeta, planned_entry
from sweep.spec import SearchSpec, SweepSpec, TrialConfig, with_settings

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
    generation: int = 0  # the growth of the sweep whose trials this template makes
    layers: LayerSpace | None = None  # a fixed model's dimensions (families other than mlp and cnn)

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
        """The trial a set of search parameters makes: its densities, mask uniform."""
        if self.layers is not None:
            settings = {"model.densities": self.layers.masked_densities(params), "model.mask": "uniform"}
            return with_settings(self.base, settings)
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
        """The active weights of the model a set of search parameters makes."""
        if self.layers is not None:
            return self.layers.active_weights(params)
        widths, densities = self.allocation(params)
        model = dataclasses.replace(self.base.model, widths=tuple(widths))
        return active_weights(densities, weight_shapes(model, self.input_shape, self.num_classes))


def make_template(
    spec: SweepSpec, input_shape: Sequence[int], num_classes: int, generation: int = 0
) -> SearchTemplate:
    """What the search's space needs; a model of another family than mlp and cnn is described here, on the
    meta device (its groups checked)."""
    search = spec.search
    levels = tuple(sorted(set(search.density_levels)))
    layers = None if spec.model.built_in else layer_space(spec, input_shape, num_classes)
    template = SearchTemplate(
        spec.trial,
        levels,
        search.max_depth,
        search.widths,
        tuple(input_shape),
        num_classes,
        search.max_active_weights,
        generation=generation,
        layers=layers,
    )
    points = warm_start_points(template, search.warm_start_density) if search.warm_start_density else []
    return dataclasses.replace(template, warm_starts=tuple(tuple(sorted(p.items())) for p in points))


def define_space(trial: optuna.Trial, template: SearchTemplate) -> dict[str, Any]:
    """The define-by-run space: suggest the architecture, return the resolved trial as a constant."""
    if template.layers is not None:
        levels = list(template.levels)
        params = {name: trial.suggest_categorical(name, levels) for name in template.layers.names}
    else:
        params = _suggest_architecture(trial, template)
    if template.max_active_weights:  # feasible when <= 0
        trial.set_constraint("active_weights", template.active_weights(params) - template.max_active_weights)
    role = "warm_start" if tuple(sorted(params.items())) in template.warm_starts else "search"
    config = template.config(params)
    trial.set_user_attr("trial_key", config.key)  # the study names each trial's rows in the tables
    trial.set_user_attr("role", role)
    meta = TrialMeta("snas", role, generation=template.generation)
    return {PLANNED: planned_entry(PlannedTrial(config, meta))}


def _suggest_architecture(trial: optuna.Trial, template: SearchTemplate) -> dict[str, Any]:
    """An MLP's or CNN's depth and width where searched, and a density for each layer that exists."""
    params: dict[str, Any] = {}
    depth = len(template.base.model.widths)
    if template.max_depth:
        depth = params["depth"] = trial.suggest_int("depth", 1, template.max_depth)
    if template.widths:
        params["width"] = trial.suggest_categorical("width", list(template.widths))
    for i in range(depth):
        params[f"density_{i}"] = trial.suggest_categorical(f"density_{i}", list(template.levels))
    params["density_out"] = trial.suggest_categorical("density_out", list(template.levels))
    return params


def warm_start_points(template: SearchTemplate, density: float) -> list[dict[str, Any]]:
    """Uniform and ERK allocations at `density` on the template's own architecture, snapped to the levels (a
    fixed model: every dimension at `density`, snapped)."""
    if template.layers is not None:
        level = _snapped(template.levels, density)
        return [{name: level for name in template.layers.names}]
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
        snapped = [_snapped(template.levels, d) for d in allocation]
        point = {**fixed, **{f"density_{i}": snapped[i] for i in range(depth)}, "density_out": snapped[-1]}
        if point not in points:
            points.append(point)
    return points


def _snapped(levels: Sequence[float], density: float) -> float:
    """The level nearest to `density`, by ratio."""
    return min(levels, key=lambda level: abs(math.log(level / density)))


@dataclass(frozen=True)
class Objective:
    """What the sampler optimises: one metric (TPE, random) or two (NSGA-II: accuracy up, size down)."""

    metric: str | list[str]
    mode: str | list[str]


def sampler_settings(search: SearchSpec) -> dict[str, int]:
    """The sampler's settings that follow the number of samples: derived once, when a search first runs, and
    kept as they were when it grows (TPE's random startup trials, NSGA-II's population)."""
    if search.sampler == "nsga2":
        return {"population_size": min(50, max(4, search.num_samples // 3))}
    if search.sampler == "tpe":
        return {"n_startup_trials": max(2, min(10, search.num_samples // 4))}
    return {}


def objective(search: SearchSpec) -> Objective:
    """What the sampler optimises: NSGA-II also minimises the active weights."""
    if search.sampler == "nsga2":
        return Objective([search.metric, "active_weights"], ["max", "min"])
    return Objective(search.metric, "max")


def make_sampler(
    search: SearchSpec, settings: Mapping[str, int] | None = None, seed: int | None = None
) -> tuple[optuna.samplers.BaseSampler, Objective]:
    """The Optuna sampler a search asks for, seeded, and the objective it optimises. A search that grows
    passes the settings it first ran with, and a seed of its own (`continuation_seed`)."""
    settings = sampler_settings(search) if settings is None else settings
    seed = search.seed if seed is None else seed
    samplers = {
        "nsga2": optuna.samplers.NSGAIISampler,
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
    }
    return samplers[search.sampler](seed=seed, **settings), objective(search)


def continuation_seed(seed: int, proposals: int) -> int:
    """The sampler's seed once `proposals` trials are in its study: a seeded sampler that starts again over
    the same study must not draw its first proposals again."""
    if proposals == 0:
        return seed
    return int(np.random.SeedSequence([seed, proposals]).generate_state(1)[0])


def within_budget(active_weights: int | None, budget: int | None) -> bool:
    """Whether a trial keeps to `search.max_active_weights` (no budget: always)."""
    return budget is None or (active_weights or 0) <= budget
