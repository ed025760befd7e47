"""The pure parts of SNAS: warm starts, baselines at the same budget, the Pareto front."""

from __future__ import annotations

import json
import math

import pytest

from sweep.core.masks import active_weights, layer_densities
from sweep.core.models import weight_shapes
from sweep.plans.baselines import baseline_trials
from sweep.plans.snas import make_template, warm_start_points
from sweep.spec import TrialConfig, config_to_dict, parse_spec, with_settings
from sweep.store.summary import pareto_keys

SHAPE, CLASSES = (1, 28, 28), 10


def test_warm_starts_are_uniform_and_erk_snapped_to_the_levels():
    spec = parse_spec(
        {
            "name": "s",
            "kind": "snas",
            "model": {"widths": [300, 100]},
            "search": {"density_levels": [0.05, 0.1, 0.2, 0.5, 1.0], "warm_start_density": 0.1},
        }
    )
    template = make_template(spec, SHAPE, CLASSES)
    uniform, erk = warm_start_points(template, 0.1)
    assert uniform == {"density_0": 0.1, "density_1": 0.1, "density_out": 0.1}
    assert set(erk.values()) <= set(template.levels)
    assert erk["density_0"] < erk["density_1"] <= erk["density_out"]  # ERK favours the small layers


def test_baselines_match_the_best_trials_budget():
    best_config = with_settings(
        TrialConfig(), {"model.widths": [300, 100], "model.densities": [0.05, 0.5, 1.0]}
    )
    shapes = weight_shapes(best_config.model, SHAPE, CLASSES)
    budget = active_weights([0.05, 0.5, 1.0], shapes)
    best = {
        "trial_key": best_config.key,
        "active_weights": budget,
        "config": json.dumps(config_to_dict(best_config)),
    }
    planned = {p.meta.role: p for p in baseline_trials(best, SHAPE, CLASSES)}
    assert set(planned) == {"baseline_uniform", "baseline_erk", "baseline_dense", "baseline_full_dense"}
    for role in ("baseline_uniform", "baseline_erk", "baseline_dense"):
        model = planned[role].config.model
        shapes_role = weight_shapes(model, SHAPE, CLASSES)
        count = active_weights(layer_densities(model.mask, model.densities, shapes_role), shapes_role)
        assert count == pytest.approx(budget, rel=0.02), role
        assert planned[role].meta.pair_id == best_config.key
    assert planned["baseline_dense"].config.model.mask == "dense"
    full = planned["baseline_full_dense"].config.model
    assert full.widths == (300, 100) and full.mask == "dense"

    seeded = baseline_trials(best, SHAPE, CLASSES, seeds=(0, 1, 2))
    by_role: dict[str, list[int]] = {}
    for item in seeded:
        by_role.setdefault(item.meta.role, []).append(item.config.train.seed)
        assert item.meta.pair_id == best_config.key
    assert by_role == {**{role: [0, 1, 2] for role in planned}, "best_reseeded": [1, 2]}
    assert len({item.config.key for item in seeded}) == len(seeded) == 14
    reseeded = [item.config for item in seeded if item.meta.role == "best_reseeded"]
    assert all(c.model == best_config.model for c in reseeded)  # the same architecture, another seed


def test_pareto_front():
    rows = [
        {"trial_key": "a", "status": "done", "val_acc": 0.90, "active_weights": 1000},
        {"trial_key": "b", "status": "done", "val_acc": 0.85, "active_weights": 500},
        {"trial_key": "c", "status": "done", "val_acc": 0.84, "active_weights": 800},  # beaten by b
        {"trial_key": "d", "status": "done", "val_acc": 0.95, "active_weights": 900, "feasible": False},
        {"trial_key": "e", "status": "error", "val_acc": None, "active_weights": None},
        {"trial_key": "f", "status": "done", "val_acc": math.nan, "active_weights": 10},
    ]
    assert pareto_keys(rows, "val_acc") == {"a", "b"}
