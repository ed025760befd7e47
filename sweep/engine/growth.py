"""A sweep's growths in its state: each run that added to it, what changed, and what it ran with.

The sweep's state (`<results>/_sweeps/<name>.json`) keeps `generation` (0 for the first run, one more for
each growth) and `history`, one entry per generation: when it started and ended, the command, the spec
changes that grew it, how many trials it added, and the project, torch, Ray and Optuna versions (a trial's
key does not see code changes, so a grown sweep says which code trained which part). A search also keeps
the sampler settings it first ran with (`plans/snas.py: sampler_settings`), which do not move as it grows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata

from sweep.engine.generation import Generation
from sweep.errors import UserError
from sweep.plans.snas import sampler_settings
from sweep.spec import SweepSpec, config_to_dict, parse_spec
from sweep.spec.growth import Growth as SpecGrowth
from sweep.spec.growth import growth
from sweep.store import ResultsStore


def first_state(spec: SweepSpec, command: str, store: ResultsStore) -> dict:
    """The state of a sweep that starts now."""
    state = {"name": spec.name, "spec": config_to_dict(spec), "stage": "main", "generation": 0, "history": []}
    if spec.kind == "snas":
        state["sampler"] = sampler_settings(spec.search)
    return _begin(state, command, [], store)


def grown_state(state: dict, spec: SweepSpec, grown: SpecGrowth, store: ResultsStore) -> dict:
    """The state of a sweep that grows now by `grown`."""
    old = parse_spec(state["spec"])
    state = {**state, "spec": config_to_dict(spec), "stage": "main", "generation": generation(state) + 1}
    if spec.kind == "snas" and "sampler" not in state:  # a state from before growths: as the old spec derived
        state["sampler"] = sampler_settings(old.search)
    state.setdefault("history", [])
    entry_changes = [str(change) for change in grown.grows]
    state = _begin(state, "run", entry_changes, store)
    if grown.epochs:
        state["history"][-1]["epochs"] = list(grown.epochs)
    return state


def check_growth(state: dict, spec: SweepSpec, results: str) -> SpecGrowth:
    """What a new spec adds to a sweep that ran; a change that is not growth stops here, each named."""
    grown = growth(parse_spec(state["spec"]), spec)
    if grown.refused:
        listed = "; ".join(map(str, grown.refused))
        raise UserError(
            f"sweep {spec.name} already ran in {results}, and a sweep that ran can only grow (more "
            f"samples, seeds, grid values or epochs); this spec changes: {listed}. Give it another name "
            "(--set name=...)"
        )
    return grown


def finish_generation(state: dict, store: ResultsStore) -> None:
    """Close the generation's history entry: when it ended, how many trials it added."""
    history = state.get("history") or []
    if not history or history[-1].get("ended_at"):
        return
    entry = history[-1]
    done, trained = _counts(store, state["name"], entry["started_at"])
    entry["ended_at"] = _now()
    entry["trials_added"] = done - entry["trials_before"]
    entry["trials_trained"] = trained


def stage_generation(state: dict) -> Generation:
    """What the stages of this run need to know of the sweep's growths."""
    earlier = tuple(entry["epochs"][0] for entry in state.get("history") or [] if entry.get("epochs"))
    return Generation(generation(state), earlier, state.get("sampler"))


def generation(state: dict) -> int:
    return int(state.get("generation") or 0)


def _begin(state: dict, command: str, changes: list[str], store: ResultsStore) -> dict:
    entry = {
        "generation": generation(state),
        "started_at": _now(),
        "ended_at": None,
        "command": command,
        "changes": changes,
        "trials_before": _counts(store, state["name"], None)[0],
        "trials_added": None,
        "versions": _versions(),
    }
    return {**state, "history": [*state["history"], entry]}


def _counts(store: ResultsStore, sweep: str, since: str | None) -> tuple[int, int]:
    """The sweep's finished trials, and how many of them ended after `since` (an ISO time)."""
    if not store.exists():
        return 0, 0
    rows = store.read("trials", sweep, columns=["status", "ended_at"]).to_pylist()
    done = [row for row in rows if row["status"] == "done"]
    start = datetime.fromisoformat(since) if since else None
    return len(done), sum(1 for row in done if start and row["ended_at"] and row["ended_at"] >= start)


def _versions() -> dict[str, str | None]:
    found = {}
    for name in ("sparse-sweep", "torch", "ray", "optuna"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
