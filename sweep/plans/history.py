"""Finished trials as a search's history: `trials` rows turned back into the Optuna trials that would have
produced them, for a search that starts from earlier ones (`search.warm_start_from`), or that rebuilds its
study from its own rows.

A row fits a search when every setting that the search does not vary (data, training, gradient-flow probe,
mask method) equals the search's own, and its architecture lies in the search's space: its depth and width
among those searched, each layer's density one of the levels. Its value is what the search ranks by.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from sweep.plans.snas import Objective, SearchTemplate
from sweep.spec import config_to_dict, parse_trial
from sweep.spec.convert import flatten
from sweep.spec.schema import KEYLESS

SEARCHED = frozenset({"model.widths", "model.densities", "model.mask", "model.init_widths"})
USABLE_ROLES = ("search", "warm_start")


@dataclass(frozen=True)
class Fitted:
    """The rows that fit a search, as Optuna trials, and for each row that does not, why."""

    trials: list[optuna.trial.FrozenTrial]
    misfits: dict[str, int]  # reason -> how many rows

    def misfit_text(self) -> str:
        return "; ".join(f"{n} {reason}" for reason, n in sorted(self.misfits.items(), key=lambda kv: -kv[1]))


def fit_rows(
    template: SearchTemplate, objective: Objective, rows: list[Mapping[str, Any]], attrs: Mapping[str, Any]
) -> Fitted:
    """Each finished search trial among `rows` that fits the template, with `attrs` among its user attrs."""
    trials: list[optuna.trial.FrozenTrial] = []
    misfits: dict[str, int] = {}
    for row in rows:
        if row.get("status") != "done" or row.get("role") not in USABLE_ROLES:
            continue
        trial = study_trial(template, objective, row, attrs)
        if isinstance(trial, str):
            misfits[trial] = misfits.get(trial, 0) + 1
        else:
            trials.append(trial)
    return Fitted(trials, misfits)


def study_trial(
    template: SearchTemplate, objective: Objective, row: Mapping[str, Any], attrs: Mapping[str, Any]
) -> optuna.trial.FrozenTrial | str:
    """The Optuna trial behind a `trials` row, or why the row does not fit the search."""
    config = parse_trial(json.loads(row["config"]))
    ours, theirs = _fixed(template.base), _fixed(config)
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            return f"with another {key}"
    params = _params(template, config)
    if isinstance(params, str):
        return params
    metrics = objective.metric if isinstance(objective.metric, list) else [objective.metric]
    values = [row.get(metric) for metric in metrics]
    if any(value is None for value in values):
        return f"without {', '.join(metrics)}"
    constraints = None
    if template.max_active_weights:
        constraints = {"active_weights": template.active_weights(params) - template.max_active_weights}
    return optuna.trial.create_trial(
        values=[float(v) for v in values],
        params=params,
        distributions=distributions(template, params),
        user_attrs={"trial_key": row["trial_key"], "role": row.get("role"), **attrs},
        constraints=constraints,
    )


def distributions(template: SearchTemplate, params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """The distributions the define-by-run space draws each parameter from (`plans/snas.py`)."""
    found: dict[str, BaseDistribution] = {}
    for name in params:
        if name == "depth":
            found[name] = IntDistribution(1, int(template.max_depth or 1))
        elif name == "width":
            found[name] = CategoricalDistribution(list(template.widths or ()))
        else:
            found[name] = CategoricalDistribution(list(template.levels))
    return found


def _fixed(config: Any) -> dict[str, Any]:
    flat = flatten(config_to_dict(config))
    return {k: v for k, v in flat.items() if k not in SEARCHED and k not in KEYLESS}


def _params(template: SearchTemplate, config: Any) -> dict[str, Any] | str:
    """The search parameters that give the config's architecture, or why none do."""
    if template.layers is not None:  # a fixed model: its densities only
        return template.layers.params_of(config.model, template.levels)
    widths = list(config.model.widths)
    depth = len(widths)
    densities = config.model.densities
    densities = list(densities) if isinstance(densities, list | tuple) else [densities] * (depth + 1)
    params: dict[str, Any] = {}
    if template.max_depth:
        if depth > template.max_depth:
            return "deeper than search.max_depth"
        params["depth"] = depth
    if template.widths:
        if len(set(widths)) != 1 or widths[0] not in template.widths:
            return "with a width outside search.widths"
        params["width"] = widths[0]
    if config.model.mask != "uniform" or len(densities) != depth + 1:
        return "without one density per layer"
    if any(d not in template.levels for d in densities):
        return "with densities outside search.density_levels"
    params.update({f"density_{i}": densities[i] for i in range(depth)})
    params["density_out"] = densities[-1]
    if template.allocation(params) != (widths, [float(d) for d in densities]):
        return "with an architecture outside the search's space"
    return params
