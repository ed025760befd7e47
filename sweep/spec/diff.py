"""What differs between two specs of one sweep, setting by setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweep.spec.convert import config_to_dict, flatten
from sweep.spec.schema import KEYLESS, SweepSpec

# Where and how a sweep runs and is watched, not what it computes: these may change between runs of one sweep.
RUN_SETTINGS = ("resources.", "ray.", "track.")


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def changes(old: SweepSpec, new: SweepSpec) -> list[Change]:
    """Every setting that differs, except those that change no trial's result (where it runs, where the
    data lives, how often it checkpoints)."""
    before, after = flatten(config_to_dict(old)), flatten(config_to_dict(new))
    return [
        Change(key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key) and not key.startswith(RUN_SETTINGS) and key not in KEYLESS
    ]


def _show(value: Any) -> str:
    return "(unset)" if value is None else str(value)
