"""The Ray layer: sweeps as Ray Tune runs. It adapts the core trainer to Tune and adds nothing scientific.

A sweep runs in stages, each one Tune experiment (`engine/stage.py`):
- `single` and `sc_sdc`: one grid of planned trials (trials already done in the tables are skipped);
- `snas`: the Optuna search, then optionally the baselines at the best trial's active-weight count.
Workers report every epoch with `ray.tune.report`; a driver-side callback writes the rows, so the tables
fill while the sweep runs. The sweep's spec and stage live in `<results>/_sweeps/<name>.json`, which
`sweep resume` reads to continue an interrupted sweep with `Tuner.restore`. One driver at a time holds a
sweep (`engine/lease.py`); everything is read and checked before anything is written.
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sweep.core.data import ArrayDataset, load_arrays
from sweep.engine.growth import (
    check_growth,
    finish_generation,
    first_state,
    generation,
    grown_state,
    stage_generation,
)
from sweep.engine.lease import DriverLease, driver_lease
from sweep.engine.repair import unrecorded_trials
from sweep.engine.session import Echo, ray_session, stop_tune_run
from sweep.engine.stage import experiments_of, forget_experiments, run_stage
from sweep.engine.storage import settled_spec
from sweep.engine.worker import dataset_key
from sweep.errors import Interrupted, ResultsError, UserError
from sweep.plans.plan import check_models, planned_trials
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec, config_to_dict, parse_spec
from sweep.store import ResultsStore
from sweep.store.compaction import compact, compaction_line
from sweep.store.damage import rerun_command
from sweep.store.location import shown


@dataclass
class SweepResult:
    name: str
    spec: dict
    results: str
    wall_s: float
    trials: list[dict]
    ran: bool = True  # False when the sweep was complete already and nothing ran
    replayed: int = 0  # proposals a search made again, answered with their earlier result
    peak_mb: float = 0.0  # the driver's peak resident memory
    started_at: datetime | None = None  # when this run began: the trials that ended since are its own

    @property
    def trained(self) -> list[dict]:
        """The trials this run trained (or recorded)."""
        start = self.started_at
        return [t for t in self.trials if start is None or (t["ended_at"] and t["ended_at"] >= start)]


def run_sweep(
    spec: SweepSpec, results: str, address: str | None = None, echo: Echo = print, compaction: bool = True
) -> SweepResult:
    """Run a sweep from the start (grids skip trials already done in the tables); compact its tables at
    the end unless `compaction` is off."""
    spec = settled_spec(spec)
    check_models(spec)
    store = ResultsStore(results)
    store.check_writable()
    with driver_lease(store, spec.name, "run", on_lost=stop_tune_run, echo=echo) as lease:
        state = store.sweep_state(spec.name)
        store.check_readable(spec.name)  # a damaged table stops the run here, before anything changes
        if state and state["stage"] != "done":
            gone = f", and its driver is gone ({lease.previous.describe()})" if lease.previous else ""
            raise UserError(
                f"sweep {spec.name} in {results} was interrupted{gone}; no driver runs it now: continue it "
                f"with 'sweep resume {spec.name} --results {shown(results)}'"
            )
        _check_warm_start_sources(spec, store, results)
        if state:
            grown = check_growth(state, spec, results)
            if grown.grows:
                state = grown_state(state, spec, grown, store)
                echo(f"growing sweep {spec.name} (growth {generation(state)}): {grown.describe()}")
            elif spec.kind == "snas" or _all_done(spec, store):
                echo(f"sweep {spec.name} is already complete in {results}")
                return _run(spec, store, state, address, echo, lease, resume=False, compaction=compaction)
            else:  # trials of the plan that failed or never ran: run them, in the same generation
                state = {**state, "spec": config_to_dict(spec), "stage": "main"}
        else:  # Tune state or a journal no sweep state vouches for is an older sweep's of the same name:
            forget_experiments(spec, store)  # its checkpoints must not stand in for this sweep's trials
            store.discard_study(spec.name)
            state = first_state(spec, "run", store)
        return _run(spec, store, state, address, echo, lease, resume=False, compaction=compaction)


def resume_sweep(
    name: str, results: str, address: str | None = None, echo: Echo = print, compaction: bool = True
) -> SweepResult:
    """Continue an interrupted sweep: restore its Tune state, rerun no finished trial."""
    store = ResultsStore(results)
    state = store.sweep_state(name)
    if state is None and name in store.sweeps():  # trials that `sweep train` trained alone
        raise UserError(
            f"sweep {name} in {results} holds trials that 'sweep train' trained, which 'sweep resume' does "
            f"not continue: {rerun_command(store, name)} trains one again"
        )
    if state is None:
        known = ", ".join(s["name"] for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    store.check_writable()
    with driver_lease(store, name, "resume", on_lost=stop_tune_run, echo=echo) as lease:
        if lease.previous is not None:
            echo(f"sweep {name}: took over the lease of a driver that is gone ({lease.previous.describe()})")
        store.check_readable(name)  # a damaged table stops the resume here, before anything changes
        spec = parse_spec(state["spec"])
        if state["stage"] == "done":
            number = generation(state)
            experiments = [e for stage in stages(spec) for e in experiments_of(spec, stage, number)]
            missing = unrecorded_trials(spec, store, experiments)
            if not missing:
                echo(f"sweep {name} is already complete")
                return _run(spec, store, state, address, echo, lease, resume=True, compaction=compaction)
            echo(f"sweep {name} is complete, but {missing} of its trials lack rows: recording them again")
            state = {**state, "stage": stages(spec)[0]}
        return _run(spec, store, state, address, echo, lease, resume=True, compaction=compaction)


def _all_done(spec: SweepSpec, store: ResultsStore) -> bool:
    rows = store.read("trials", spec.name, columns=["trial_key", "status"]).to_pylist()
    done = {row["trial_key"] for row in rows if row["status"] == "done"}
    return all(item.config.key in done for item in planned_trials(spec))


def _check_warm_start_sources(spec: SweepSpec, store: ResultsStore, results: str) -> None:
    """The sweeps a search starts from are in the same results store, and are not itself."""
    names = spec.search.warm_start_from if spec.search else ()
    known = set(store.sweeps())
    for name in names:
        if name == spec.name:
            raise UserError(f"search.warm_start_from: {name!r} is this sweep itself; name earlier sweeps")
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UserError(
                f"search.warm_start_from: no sweep named {name!r} in {results} (sweeps there: {listed})"
            )


def _run(
    spec: SweepSpec,
    store: ResultsStore,
    state: dict,
    address: str | None,
    echo: Echo,
    lease: DriverLease,
    resume: bool,
    compaction: bool = True,
) -> SweepResult:
    started, started_at = time.perf_counter(), datetime.now(UTC)
    planned = planned_trials(spec)
    names = stages(spec)
    todo = names[names.index(state["stage"]) :] if state["stage"] in names else []
    replayed = 0
    if todo:
        with ThreadPoolExecutor(max_workers=1) as loader:
            loading = loader.submit(_load_data, spec, planned)  # reads the data while Ray starts
            with ray_session(address or spec.ray.address, spec, echo, results=store.root):
                data = loading.result()
                for stage in todo:
                    state["stage"] = stage
                    store.save_sweep_state(state)
                    try:
                        now = stage_generation(state)
                        replayed += run_stage(spec, store, stage, data, planned, echo, resume, now)
                    except Interrupted:
                        lease.check()  # the lease was lost: say so, not "interrupted"
                        raise
        lease.check()
        state["stage"] = "done"
        finish_generation(state, store)
        store.save_sweep_state(state)
        try:
            if compaction:
                echo(compaction_line(spec.name, compact(store, spec.name)))
        except (ResultsError, OSError) as exc:  # the sweep is complete; its files can be compacted later
            later = f"'sweep compact {spec.name} --results {shown(store.root)}'"
            echo(f"sweep {spec.name}: compaction failed ({exc}); run {later} later")
    rows = store.rows("trials", spec.name)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = time.perf_counter() - started
    ran = bool(todo)
    return SweepResult(spec.name, state["spec"], store.root, wall, rows, ran, replayed, peak_mb, started_at)


def stages(spec: SweepSpec) -> list[str]:
    """A sweep's stages in order."""
    return ["main", "baselines"] if spec.kind == "snas" and spec.search.baselines else ["main"]


def _load_data(spec: SweepSpec, planned: list[PlannedTrial]) -> dict[str, ArrayDataset]:
    """Each data set the sweep needs, read once on the driver; Tune ships it once per node."""
    specs = {dataset_key(spec.dataset): spec.dataset}
    for item in planned:
        specs.setdefault(dataset_key(item.config.dataset), item.config.dataset)
    return {key: load_arrays(dataset) for key, dataset in specs.items()}
