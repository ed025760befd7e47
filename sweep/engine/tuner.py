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

from sweep.core.data import ArrayDataset, load_arrays
from sweep.engine.lease import DriverLease, driver_lease
from sweep.engine.repair import unrecorded_trials
from sweep.engine.session import Echo, ray_session, stop_tune_run
from sweep.engine.stage import experiment_name, forget_experiments, run_stage
from sweep.engine.worker import dataset_key
from sweep.errors import Interrupted, ResultsError, UserError
from sweep.plans.plan import planned_trials
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec, changes, config_to_dict, parse_spec
from sweep.store import ResultsStore
from sweep.store.compaction import compact, compaction_line


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


def run_sweep(
    spec: SweepSpec, results: str, address: str | None = None, echo: Echo = print, compaction: bool = True
) -> SweepResult:
    """Run a sweep from the start (grids skip trials already done in the tables); compact its tables at
    the end unless `compaction` is off."""
    store = ResultsStore(results)
    store.check_writable()
    with driver_lease(store, spec.name, "run", on_lost=stop_tune_run) as lease:
        state = store.sweep_state(spec.name)
        store.check_readable(spec.name)  # a damaged table stops the run here, before anything changes
        if state and state["stage"] != "done":
            gone = f", and its driver is gone ({lease.previous.describe()})" if lease.previous else ""
            raise UserError(
                f"sweep {spec.name} in {results} was interrupted{gone}; no driver runs it now: continue it "
                f"with 'sweep resume {spec.name} --results {results}'"
            )
        if state:
            _check_unchanged(parse_spec(state["spec"]), spec, results)
        if state and spec.kind == "snas":
            echo(f"sweep {spec.name} is already complete in {results}")
            return _run(spec, store, state, address, echo, lease, resume=False, compaction=compaction)
        state = {"name": spec.name, "spec": config_to_dict(spec), "stage": "main"}
        if not store.sweep_state(spec.name):  # Tune state or a journal no sweep state vouches for is an
            forget_experiments(spec, store)  # older sweep's of the same name: its checkpoints must not
            store.discard_study(spec.name)  # stand in for this sweep's trials
        return _run(spec, store, state, address, echo, lease, resume=False, compaction=compaction)


def resume_sweep(
    name: str, results: str, address: str | None = None, echo: Echo = print, compaction: bool = True
) -> SweepResult:
    """Continue an interrupted sweep: restore its Tune state, rerun no finished trial."""
    store = ResultsStore(results)
    state = store.sweep_state(name)
    if state is None:
        known = ", ".join(s["name"] for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    store.check_writable()
    with driver_lease(store, name, "resume", on_lost=stop_tune_run) as lease:
        if lease.previous is not None:
            echo(f"sweep {name}: took over the lease of a driver that is gone ({lease.previous.describe()})")
        store.check_readable(name)  # a damaged table stops the resume here, before anything changes
        spec = parse_spec(state["spec"])
        if state["stage"] == "done":
            missing = unrecorded_trials(spec, store, [experiment for _, experiment in stages(spec)])
            if not missing:
                echo(f"sweep {name} is already complete")
                return _run(spec, store, state, address, echo, lease, resume=True, compaction=compaction)
            echo(f"sweep {name} is complete, but {missing} of its trials lack rows: recording them again")
            state = {**state, "stage": stages(spec)[0][0]}
        return _run(spec, store, state, address, echo, lease, resume=True, compaction=compaction)


def _check_unchanged(old: SweepSpec, new: SweepSpec, results: str) -> None:
    """A sweep's results come from one spec: a changed spec under the same name would mix two sweeps."""
    differences = changes(old, new)
    if differences:
        listed = "; ".join(map(str, differences))
        raise UserError(
            f"sweep {new.name} already ran in {results} with another spec ({listed}); "
            "give this one another name (--set name=...)"
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
    started = time.perf_counter()
    planned = planned_trials(spec)
    names = [stage for stage, _ in stages(spec)]
    todo = names[names.index(state["stage"]) :] if state["stage"] in names else []
    replayed = 0
    if todo:
        with ThreadPoolExecutor(max_workers=1) as loader:
            loading = loader.submit(_load_data, spec, planned)  # reads the data while Ray starts
            with ray_session(address or spec.ray.address, spec, echo):
                data = loading.result()
                for stage in todo:
                    state["stage"] = stage
                    store.save_sweep_state(state)
                    try:
                        replayed += run_stage(spec, store, stage, data, planned, echo, resume=resume)
                    except Interrupted:
                        lease.check()  # the lease was lost: say so, not "interrupted"
                        raise
        lease.check()
        state["stage"] = "done"
        store.save_sweep_state(state)
        try:
            if compaction:
                echo(compaction_line(spec.name, compact(store, spec.name)))
        except (ResultsError, OSError) as exc:  # the sweep is complete; its files can be compacted later
            echo(f"sweep {spec.name}: compaction failed ({exc}); run 'sweep compact {spec.name}' later")
    rows = store.rows("trials", spec.name)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = time.perf_counter() - started
    return SweepResult(spec.name, state["spec"], store.root, wall, rows, bool(todo), replayed, peak_mb)


def stages(spec: SweepSpec) -> list[tuple[str, str]]:
    """A sweep's stages in order, each with the name of its Tune experiment."""
    names = ["main", "baselines"] if spec.kind == "snas" and spec.search.baselines else ["main"]
    return [(stage, experiment_name(spec, stage)) for stage in names]


def _load_data(spec: SweepSpec, planned: list[PlannedTrial]) -> dict[str, ArrayDataset]:
    """Each data set the sweep needs, read once on the driver; Tune ships it once per node."""
    specs = {dataset_key(spec.dataset): spec.dataset}
    for item in planned:
        specs.setdefault(dataset_key(item.config.dataset), item.config.dataset)
    return {key: load_arrays(dataset) for key, dataset in specs.items()}
