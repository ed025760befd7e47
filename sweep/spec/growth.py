"""Which changes to a sweep's spec grow it, and which would mix two sweeps under one name.

A sweep that ran accepts a new spec that only adds: more search samples or baseline seeds, more values in a
grid's seeds, ratios, depths or axes, and more epochs where a longer run is this run continued. Settings that
change no trial's result (`resources`, `ray`, checkpointing, where the data lives) change freely. Every other
change is refused, each with its old and new value and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweep.spec.choices import MASKS_CHANGE
from sweep.spec.diff import Change, changes
from sweep.spec.load import axis_keys
from sweep.spec.schema import SweepSpec

# Lists that a sweep grows by adding values (every old value kept, in any order).
GROWING_LISTS = ("search.baseline_seeds", "grid.seeds", "grid.ratios", "grid.depths")
GROWING_COUNTS = ("search.num_samples",)
EPOCHS = "train.epochs"


@dataclass(frozen=True)
class Refusal:
    change: Change
    why: str

    def __str__(self) -> str:
        return f"{self.change} ({self.why})"


@dataclass(frozen=True)
class Growth:
    """What a new spec adds to a sweep that ran (`grows`), and what it may not change (`refused`)."""

    grows: list[Change] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def epochs(self) -> tuple[int, int] | None:
        """(old, new) when the growth adds epochs."""
        change = next((c for c in self.grows if c.key == EPOCHS), None)
        return (int(change.old), int(change.new)) if change else None

    def describe(self) -> str:
        return "; ".join(map(str, self.grows))


def growth(old: SweepSpec, new: SweepSpec) -> Growth:
    """Classify every difference between the spec a sweep ran with and a new one."""
    grows, refused = [], []
    for change in changes(old, new):
        why = _why_not(change, old, new)
        if why is None:
            grows.append(change)
        else:
            refused.append(Refusal(change, why))
    return Growth(grows, refused)


def _why_not(change: Change, old: SweepSpec, new: SweepSpec) -> str | None:
    key = change.key
    if key in GROWING_COUNTS:
        return None if change.new > change.old else "a sweep grows: it can take more samples, not fewer"
    if key in GROWING_LISTS or key.startswith("grid.axes."):
        if change.old is None:
            return "a new axis changes every trial of the grid; give this grid another name"
        if change.new is None:
            return "an axis cannot be taken away from a grid that ran"
        if not _keeps_all(change.old, change.new):
            return "a grid grows by adding values, keeping the old"
        return None
    if key == EPOCHS:
        return _why_not_longer(change, old, new)
    return "it changes what the sweep's trials compute"


def _keeps_all(old: list[Any], new: list[Any]) -> bool:
    return all(value in new for value in old)


def _why_not_longer(change: Change, old: SweepSpec, new: SweepSpec) -> str | None:
    """More epochs grow a sweep only when a trial trained longer equals that trial continued."""
    if change.new < change.old:
        return "a sweep grows: it can train longer, not shorter"
    if new.kind == "snas":
        return "a search ranks its trials at one length; search at the new length under another name"
    axes = new.grid.axes if new.grid else {}
    for schedule in _values(axes, "train.schedule", new.train.schedule):
        step_size = _values(axes, "train.step_size", new.train.step_size)
        if schedule == "cosine" or (schedule == "step" and None in step_size):
            return (
                f"train.schedule {schedule} {'without train.step_size ' if schedule == 'step' else ''}"
                "depends on the total epochs, so the longer run is not this run continued"
            )
    for method in _values(axes, "sparsity.method", new.sparsity.method):
        if method in MASKS_CHANGE:
            return f"sparsity.method {method} schedules its mask updates over the total epochs"
    return None


def _values(axes: dict[str, Any], key: str, default: Any) -> list[Any]:
    """The values a setting takes across a grid: its axis, or the spec's one value."""
    for name, values in axes.items():
        keys = axis_keys(name)
        if key in keys:
            return [v[keys.index(key)] if len(keys) > 1 else v for v in values]
    return [default]
