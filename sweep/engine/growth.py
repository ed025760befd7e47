"""A sweep's growths in its state: each run that added to it, what changed, and what it ran with.

The sweep's state (`<results>/_sweeps/<name>.json`) keeps `generation` (0 for the first run, one more for
each growth) and `history`, one entry per generation: when it started and ended, the command, the spec
changes that grew it, how many trials it added, and the project, torch, Ray and Optuna versions (a trial's
key does not see code changes, so a grown sweep says which code trained which part). A search also keeps
the sampler settings it first ran with (`plans/snas.py: sampler_settings`), which do not move as it grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sweep.errors import UserError
from sweep.plans.snas import sampler_settings
from sweep.spec import SweepSpec, config_to_dict, parse_spec
from sweep.spec.growth import Growth as SpecGrowth
from sweep.spec.growth import growth
from sweep.store import ResultsStore
from sweep.store.sweep_state import GrowthEntry, SweepState, package_versions


@dataclass(frozen=True)
class Generation:
    """The growth this run trains (0: the first run), the lengths the sweep ran at before it grew to more
    epochs, and the sampler settings its search first ran with (None: derive them from the spec)."""

    number: int = 0
    earlier_epochs: tuple[int, ...] = ()
    sampler_settings: Mapping[str, int] | None = None


def first_state(spec: SweepSpec, command: str, store: ResultsStore) -> SweepState:
    """The state of a sweep that starts now."""
    sampler = sampler_settings(spec.search) if spec.kind == "snas" else None
    state = SweepState(spec.name, config_to_dict(spec), sampler=sampler)
    _begin(state, command, [], store)
    return state


def grown_state(state: SweepState, spec: SweepSpec, grown: SpecGrowth, store: ResultsStore) -> SweepState:
    """The state of a sweep that grows now by `grown`."""
    old = parse_spec(state.spec)
    sampler = state.sampler
    if spec.kind == "snas" and sampler is None:  # a state from before growths: as the old spec derived it
        sampler = sampler_settings(old.search)
    state = replace(
        state, spec=config_to_dict(spec), stage="main", generation=state.generation + 1, sampler=sampler
    )
    state.history = list(state.history)
    _begin(state, "run", [str(change) for change in grown.grows], store)
    if grown.epochs:
        state.history[-1].epochs = list(grown.epochs)
    return state


def check_growth(state: SweepState, spec: SweepSpec, results: str) -> SpecGrowth:
    """What a new spec adds to a sweep that ran; a change that is not growth stops here, each named."""
    grown = growth(parse_spec(state.spec), spec)
    if grown.refused:
        listed = "; ".join(map(str, grown.refused))
        raise UserError(
            f"sweep {spec.name} already ran in {results}, and a sweep that ran can only grow (more "
            f"samples, seeds, grid values or epochs); this spec changes: {listed}. Give it another name "
            "(--set name=...)"
        )
    return grown


def finish_generation(state: SweepState, store: ResultsStore) -> None:
    """Close the generation's history entry: when it ended, how many trials it added."""
    if not state.history or state.history[-1].ended_at:
        return
    entry = state.history[-1]
    done, trained = _counts(store, state.name, entry.started_at)
    entry.ended_at = _now()
    entry.trials_added = done - entry.trials_before
    entry.trials_trained = trained


def stage_generation(state: SweepState) -> Generation:
    """What the stages of this run need to know of the sweep's growths."""
    earlier = tuple(entry.epochs[0] for entry in state.history if entry.epochs)
    return Generation(state.generation, earlier, state.sampler)


def _begin(state: SweepState, command: str, changes: list[str], store: ResultsStore) -> None:
    """Open the history entry of the run that starts now."""
    before = _counts(store, state.name, None)[0]
    state.history.append(GrowthEntry(state.generation, _now(), command, changes, before, package_versions()))


def _counts(store: ResultsStore, sweep: str, since: str | None) -> tuple[int, int]:
    """The sweep's finished trials, and how many of them ended after `since` (an ISO time)."""
    if not store.exists():
        return 0, 0
    rows = store.read("trials", sweep, columns=["status", "ended_at"]).to_pylist()
    done = [row for row in rows if row["status"] == "done"]
    start = datetime.fromisoformat(since) if since else None
    return len(done), sum(1 for row in done if start and row["ended_at"] and row["ended_at"] >= start)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
