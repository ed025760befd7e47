"""Which trials a sweep plans before it runs: a grid's cells, SC-SDC's pairs, or the one trial of a spec
(a search plans its trials as it goes: `plans/snas.py`)."""

from __future__ import annotations

import json

from sweep.core.data import dataset_shape
from sweep.core.models import model_densities
from sweep.plans.grid import grid_trials
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.plans.snas_layers import check_search
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import SweepSpec, config_to_dict


def planned_trials(spec: SweepSpec) -> list[PlannedTrial]:
    if spec.kind == "sc_sdc":
        return sc_sdc_trials(spec)
    if spec.kind == "grid":
        return grid_trials(spec)
    return [PlannedTrial(spec.trial, TrialMeta())]


def check_models(spec: SweepSpec, planned: list[PlannedTrial]) -> None:
    """Build every planned model of another family than mlp and cnn once, on the meta device (no weight is
    allocated): its factory imports, its kwargs are taken, it fits the data's images and classes and its
    densities its layers. A mistake is one line before anything starts. `planned`: the spec's planned
    trials, which the caller has planned once (a large grid takes seconds); a search checks its own trial."""
    seen: set[str] = set()
    configs = [spec.trial] if spec.kind == "snas" else [item.config for item in planned]
    for config in configs:
        identity = json.dumps([config_to_dict(config.model), config_to_dict(config.dataset)], sort_keys=True)
        if config.model.built_in or identity in seen:
            continue
        seen.add(identity)
        input_shape, classes = dataset_shape(config.dataset)
        model_densities(config.model, input_shape, classes)
    if spec.kind == "snas":
        check_search(spec)  # its family's search settings, and a fixed model's groups
