"""Which trials a sweep plans before it runs: a grid's cells, SC-SDC's pairs, or the one trial of a spec
(a search plans its trials as it goes: `plans/snas.py`)."""

from __future__ import annotations

from sweep.plans.grid import grid_trials
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import SweepSpec


def planned_trials(spec: SweepSpec) -> list[PlannedTrial]:
    if spec.kind == "sc_sdc":
        return sc_sdc_trials(spec)
    if spec.kind == "grid":
        return grid_trials(spec)
    return [PlannedTrial(spec.trial, TrialMeta())]
