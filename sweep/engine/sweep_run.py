"""`SweepRun`: what the steps of one run of a sweep share, from the driver (`engine/driver.py`) down to its
stages, the to-do list, the search and the repairs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sweep.core.data import ArrayDataset
from sweep.echo import Echo
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.lease import DriverLease


@dataclass
class SweepRun:
    """The sweep's spec and planned trials, the store, the lease this driver holds on the sweep, where Ray
    is, how it prints, whether it continues an interrupted run, and the data sets once read."""

    spec: SweepSpec
    store: ResultsStore
    lease: DriverLease
    echo: Echo = print
    address: str | None = None
    resume: bool = False
    planned: list[PlannedTrial] = field(default_factory=list)
    data: Mapping[str, ArrayDataset] = field(default_factory=dict)
