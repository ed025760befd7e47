"""Which of a sweep's growths a run trains, as its stages need to know it (`engine/growth.py` keeps the
sweep's history of growths)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Generation:
    """The growth this run trains (0: the first run), the lengths the sweep ran at before it grew to more
    epochs, and the sampler settings its search first ran with (None: derive them from the spec)."""

    number: int = 0
    earlier_epochs: tuple[int, ...] = ()
    sampler_settings: Mapping[str, int] | None = None
