"""A sweep from spec to finished tables, read top to bottom: take the sweep's lease, check the store, plan,
start Ray while the data loads, run each stage as one Tune experiment, close the growth's history, compact,
release. Each step is a call into the module named for it; `SweepRun` carries what the steps share.

A sweep runs in stages (`engine/stage.py`): `main` (a grid of planned trials, or the SNAS search) and, for
a search that asks for them, `baselines`. Workers report every epoch with `ray.tune.report`; a driver-side
callback writes the rows, so the tables fill while the sweep runs. The sweep's state
(`store/sweep_state.py`) records the stage reached; `sweep resume` reads it to continue an interrupted sweep
with `Tuner.restore`. One driver at a time holds a sweep (`store/lease.py`); everything is read and checked
before anything is written.
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sweep.core.data import ArrayDataset, load_arrays
from sweep.echo import Echo
from sweep.engine.experiment import preload_tune, tune_storage
from sweep.engine.growth import check_growth, finish_generation, first_state, grown_state, stage_generation
from sweep.engine.repair import unrecorded_trials
from sweep.engine.session import ray_session, stop_tune_run
from sweep.engine.stage import experiments_of, forget_experiments, run_stage
from sweep.engine.sweep_run import SweepRun
from sweep.engine.worker import dataset_key
from sweep.errors import Interrupted, ResultsError, UserError
from sweep.plans.plan import check_models, planned_trials
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec, config_to_dict, parse_spec
from sweep.store import ResultsStore
from sweep.store.compaction import compact, compaction_line
from sweep.store.damage import rerun_command
from sweep.store.deadline import store_answers
from sweep.store.lease import driver_lease
from sweep.store.location import is_uri, open_filesystem, settled_spec, shown, store_failure, store_stopped
from sweep.store.summary import done_keys
from sweep.store.sweep_state import SweepState


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
    planned = planned_trials(spec)  # once: a large grid takes seconds to plan
    check_models(spec, planned)
    store = ResultsStore(results)
    store.check_writable()
    with driver_lease(store, spec.name, "run", on_lost=stop_tune_run, echo=echo) as lease:
        run = SweepRun(spec, store, lease, echo, address, planned=planned)
        state = _state_to_run(run)
        return _drive(run, state, compaction)


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
        known = ", ".join(s.name for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    store.check_writable()
    with driver_lease(store, name, "resume", on_lost=stop_tune_run, echo=echo) as lease:
        if lease.previous is not None:
            echo(f"sweep {name}: took over the lease of a driver that is gone ({lease.previous.describe()})")
        store.check_readable(name)  # a damaged table stops the resume here, before anything changes
        spec = parse_spec(state.spec)
        run = SweepRun(spec, store, lease, echo, address, resume=True, planned=planned_trials(spec))
        if state.done:
            experiments = [e for stage in stages(spec) for e in experiments_of(spec, stage, state.generation)]
            missing = unrecorded_trials(spec, store, experiments)
            if not missing:
                echo(f"sweep {name} is already complete")
                return _drive(run, state, compaction)
            echo(f"sweep {name} is complete, but {missing} of its trials lack rows: recording them again")
            state.stage = stages(spec)[0]
        return _drive(run, state, compaction)


def _state_to_run(run: SweepRun) -> SweepState:
    """The state `sweep run` starts from: a new sweep's first, a grown sweep's next generation, the same
    generation again for trials of the plan that failed or never ran, or a complete sweep's as it is."""
    spec, store, results = run.spec, run.store, run.store.root
    state = store.sweep_state(spec.name)
    store.check_readable(spec.name)  # a damaged table stops the run here, before anything changes
    if state and not state.done:
        lease = run.lease
        gone = f", and its driver is gone ({lease.previous.describe()})" if lease.previous else ""
        raise UserError(
            f"sweep {spec.name} in {results} was interrupted{gone}; no driver runs it now: continue it "
            f"with 'sweep resume {spec.name} --results {shown(results)}'"
        )
    _check_warm_start_sources(spec, store)
    if not state:  # Tune state or a journal no sweep state vouches for is an older sweep's of the same name:
        forget_experiments(spec, store)  # its checkpoints must not stand in for this sweep's trials
        store.discard_study(spec.name)
        return first_state(spec, "run", store)
    grown = check_growth(state, spec, results)
    if grown.grows:
        state = grown_state(state, spec, grown, store)
        run.echo(f"growing sweep {spec.name} (growth {state.generation}): {grown.describe()}")
        return state
    if spec.kind == "snas" or _all_done(run):
        run.echo(f"sweep {spec.name} is already complete in {results}")
        return state
    return replace(state, spec=config_to_dict(spec), stage="main")  # the plan's failed or missing trials


def _all_done(run: SweepRun) -> bool:
    done = done_keys(run.store, run.spec.name)
    return all(item.config.key in done for item in run.planned)


def _check_warm_start_sources(spec: SweepSpec, store: ResultsStore) -> None:
    """The sweeps a search starts from are in the same results store, and are not itself."""
    names = spec.search.warm_start_from if spec.search else ()
    known = set(store.sweeps())
    for name in names:
        if name == spec.name:
            raise UserError(f"search.warm_start_from: {name!r} is this sweep itself; name earlier sweeps")
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise UserError(
                f"search.warm_start_from: no sweep named {name!r} in {store.root} (sweeps there: {listed})"
            )


def _drive(run: SweepRun, state: SweepState, compaction: bool) -> SweepResult:
    """Run the stages the state has not finished, then close the generation and compact the tables."""
    started, started_at = time.perf_counter(), datetime.now(UTC)
    spec, store = run.spec, run.store
    names = stages(spec)
    todo = names[names.index(state.stage) :] if state.stage in names else []
    replayed = 0
    if todo:
        replayed = _run_stages(run, state, todo)
        state.stage = "done"
        finish_generation(state, store)
        store.save_sweep_state(state)
        if compaction:
            _compact(run)
    rows = store.rows("trials", spec.name)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = time.perf_counter() - started
    ran = bool(todo)
    return SweepResult(spec.name, state.spec, store.root, wall, rows, ran, replayed, peak_mb, started_at)


def _run_stages(run: SweepRun, state: SweepState, todo: list[str]) -> int:
    """Start Ray while the data loads, then run each stage, saving the state as each begins; return how many
    proposals were replays."""
    replayed = 0
    with ThreadPoolExecutor(max_workers=1) as loader:
        loading = loader.submit(_load_data, run.spec, run.planned)  # reads the data while Ray starts,
        preloading = loader.submit(preload_tune)  # then imports what Tune's first run would
        with ray_session(run.address or run.spec.ray.address, run.spec, run.echo, results=run.store.root):
            run.data = loading.result()
            preloading.result()
            for stage in todo:
                state.stage = stage
                run.store.save_sweep_state(state)
                try:
                    replayed += run_stage(run, stage, stage_generation(state))
                except Interrupted:
                    run.lease.check()  # the lease was lost: say so, not "interrupted"
                    raise
                except OSError as exc:  # a bucket that went away under Tune's own reads and writes
                    away = _store_away(run, exc)
                    if away is None:
                        raise
                    raise away from None
    run.lease.check()
    return replayed


def _store_away(run: SweepRun, error: OSError) -> ResultsError | None:
    """The line that stops the sweep when a bucket it uses failed `error` and fails a probe now: the results
    store, or `ray.storage` where Tune keeps its state apart; None when every store answers (an error of
    another kind, which goes on as it is)."""
    name, results, failure = run.spec.name, run.store.root, store_failure(error)
    if is_uri(results) and not store_answers(results, run.store.exists):
        return ResultsError(store_stopped(name, results, failure))
    storage = tune_storage(run.spec, run.store) if run.spec.ray.storage else ""
    if is_uri(storage):
        fs, base = open_filesystem(storage)
        if not store_answers(storage, lambda: fs.get_file_info(base)):
            reason = f"ray.storage {shown(storage)}: {failure}"
            return ResultsError(store_stopped(name, results, reason, "it"))
    return None


def _compact(run: SweepRun) -> None:
    name, store = run.spec.name, run.store
    try:
        run.echo(compaction_line(name, compact(store, name)))
    except (ResultsError, OSError) as exc:  # the sweep is complete; its files can be compacted later
        later = f"'sweep compact {name} --results {shown(store.root)}'"
        run.echo(f"sweep {name}: compaction failed ({exc}); run {later} later")


def stages(spec: SweepSpec) -> list[str]:
    """A sweep's stages in order."""
    return ["main", "baselines"] if spec.kind == "snas" and spec.search.baselines else ["main"]


def _load_data(spec: SweepSpec, planned: list[PlannedTrial]) -> dict[str, ArrayDataset]:
    """Each data set the sweep needs, read once on the driver; Tune ships it once per node."""
    specs = {dataset_key(spec.dataset): spec.dataset}
    for item in planned:
        specs.setdefault(dataset_key(item.config.dataset), item.config.dataset)
    return {key: load_arrays(dataset) for key, dataset in specs.items()}
