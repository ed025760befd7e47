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

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sweep.core.data import ArrayDataset, load_arrays
from sweep.engine.lease import DriverLease, driver_lease
from sweep.engine.repair import unrecorded_trials
from sweep.engine.session import Echo, ray_session
from sweep.engine.stage import experiment_name, run_stage
from sweep.engine.worker import dataset_key
from sweep.errors import Interrupted, UserError
from sweep.plans.plan import planned_trials
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec, changes, config_to_dict, parse_spec
from sweep.store import ResultsStore


@dataclass
class SweepResult:
    name: str
    spec: dict
    results: str
    wall_s: float
    trials: list[dict]
    ran: bool = True  # False when the sweep was complete already and nothing ran


def run_sweep(spec: SweepSpec, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Run a sweep from the start (grids skip trials already done in the tables)."""
    store = ResultsStore(results)
    store.check_writable()
    with driver_lease(store, spec.name, "run") as lease:
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
            return _run(spec, store, state, address, echo, lease, resume=False)
        state = {"name": spec.name, "spec": config_to_dict(spec), "stage": "main"}
        return _run(spec, store, state, address, echo, lease, resume=False)


def resume_sweep(name: str, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Continue an interrupted sweep: restore its Tune state, rerun no finished trial."""
    store = ResultsStore(results)
    state = store.sweep_state(name)
    if state is None:
        known = ", ".join(s["name"] for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    store.check_writable()
    with driver_lease(store, name, "resume") as lease:
        if lease.previous is not None:
            echo(f"sweep {name}: took over the lease of a driver that is gone ({lease.previous.describe()})")
        store.check_readable(name)  # a damaged table stops the resume here, before anything changes
        spec = parse_spec(state["spec"])
        if state["stage"] == "done":
            missing = unrecorded_trials(spec, store, [experiment for _, experiment in stages(spec)])
            if not missing:
                echo(f"sweep {name} is already complete")
                return _run(spec, store, state, address, echo, lease, resume=True)
            echo(f"sweep {name} is complete, but {missing} of its trials lack rows: recording them again")
            state = {**state, "stage": stages(spec)[0][0]}
        return _run(spec, store, state, address, echo, lease, resume=True)


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
) -> SweepResult:
    started = time.perf_counter()
    planned = planned_trials(spec)
    names = [stage for stage, _ in stages(spec)]
    todo = names[names.index(state["stage"]) :] if state["stage"] in names else []
    if todo:
        with ThreadPoolExecutor(max_workers=1) as loader:
            loading = loader.submit(_load_data, spec, planned)  # reads the data while Ray starts
            with ray_session(address or spec.ray.address, spec, echo):
                data = loading.result()
                for stage in todo:
                    state["stage"] = stage
                    store.save_sweep_state(state)
                    try:
                        run_stage(spec, store, stage, data, planned, echo, resume=resume)
                    except Interrupted:
                        lease.check()  # the lease was lost: say so, not "interrupted"
                        raise
        lease.check()
        state["stage"] = "done"
        store.save_sweep_state(state)
    rows = store.rows("trials", spec.name)
    return SweepResult(spec.name, state["spec"], store.root, time.perf_counter() - started, rows, bool(todo))


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
