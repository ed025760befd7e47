"""A sweep grown to more epochs: which of its planned trials continue a shorter trial it already finished.

Where a longer run is the shorter one continued (`spec/growth.py` decides when), trial K at `train.epochs`
E is trial K' at an earlier length E' plus the epochs after E': it starts from K''s last checkpoint, and its
rows, which hold K''s, replace K''s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sweep.plans.types import PlannedTrial
from sweep.spec import with_settings


def continued_keys(
    planned: Iterable[PlannedTrial], earlier_epochs: Sequence[int], finished: set[str]
) -> dict[str, str]:
    """For each planned trial (by key) that continues a finished shorter one, that trial's key."""
    return {key: shorter for key, (shorter, _) in shorter_trials(planned, earlier_epochs, finished).items()}


def shorter_trials(
    planned: Iterable[PlannedTrial], earlier_epochs: Sequence[int], finished: set[str]
) -> dict[str, tuple[str, int]]:
    """For each planned trial (by key) that continues a finished shorter one, that trial's key and its
    epochs; the longest finished length wins."""
    if not earlier_epochs:
        return {}
    found: dict[str, tuple[str, int]] = {}
    for item in planned:
        config = item.config
        for epochs in sorted({e for e in earlier_epochs if e < config.train.epochs}, reverse=True):
            shorter = with_settings(config, {"train.epochs": epochs}).key
            if shorter in finished:
                found[config.key] = (shorter, epochs)
                break
    return found
