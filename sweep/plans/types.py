"""The plan types: a trial decided before it runs, where it sits in its sweep, and how it travels.

A planned trial travels to a Ray worker inside a Tune config under the key `PLANNED`, as plain data
(`planned_entry`), so that searchers, grids and Tune's saved state can all hold it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sweep.spec import TrialConfig, config_to_dict

# The Tune config key that carries a fully resolved trial: {"config": ..., "meta": ...}
PLANNED = "sweep_trial"


@dataclass(frozen=True)
class TrialMeta:
    """Where a trial sits in its sweep."""

    kind: str = "single"
    role: str | None = None
    pair_id: str | None = None


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of a sweep, decided before it runs."""

    config: TrialConfig
    meta: TrialMeta


def planned_entry(planned: PlannedTrial) -> dict[str, Any]:
    """A planned trial as plain data for a Tune config."""
    return {"config": config_to_dict(planned.config), "meta": dataclasses.asdict(planned.meta)}
