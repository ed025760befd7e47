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
    """Where a trial sits in its sweep: its kind and role, its partner, the growth of the sweep that first
    trained it (0: the first run), and, for a trial a longer run continues, the trial it continues (its key)
    and the Tune experiments that may hold that trial's checkpoints. An SC-SDC pair's trials both carry
    `capacity_mismatch`: (sparse active weights − dense weights) / dense weights."""

    kind: str = "single"
    role: str | None = None
    pair_id: str | None = None
    generation: int = 0
    continues: str | None = None
    continues_in: tuple[str, ...] = ()
    capacity_mismatch: float | None = None


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of a sweep, decided before it runs."""

    config: TrialConfig
    meta: TrialMeta


def planned_entry(planned: PlannedTrial) -> dict[str, Any]:
    """A planned trial as plain data for a Tune config."""
    return {"config": config_to_dict(planned.config), "meta": dataclasses.asdict(planned.meta)}


def entry_meta(entry: dict[str, Any]) -> TrialMeta:
    """The `TrialMeta` of a planned entry (Tune's saved state may hold lists where the meta has tuples)."""
    meta = dict(entry["meta"])
    meta["continues_in"] = tuple(meta.get("continues_in") or ())
    return TrialMeta(**meta)
