"""The Ray layer: sweeps as Ray Tune runs. It adapts the core trainer to Tune and adds nothing scientific.

A sweep runs in stages, each one Tune experiment under `<storage>/<sweep name>[.<stage>]`:
- `single` and `sc_sdc`: one grid of planned trials (trials already done in the tables are skipped);
- `snas`: the Optuna search, then optionally the baselines at the best trial's active-weight count.
Workers report every epoch with `ray.tune.report`; a driver-side callback writes the rows, so the tables
fill while the sweep runs. The sweep's spec and stage states live in `<results>/_sweeps/<name>.json`, which
`sweep resume` reads to continue an interrupted sweep with `Tuner.restore`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import ray
from ray import tune

from sweep.core.data import ArrayDataset, load_arrays
from sweep.engine.callbacks import ProgressCallback, ResultsCallback, replay_result
from sweep.engine.searcher import search_config
from sweep.engine.session import Echo, quiet_tune, ray_session, trial_slots
from sweep.engine.worker import (
    FinishedTrials,
    dataset_key,
    finished_trials_name,
    run_planned_trial,
    trial_name,
)
from sweep.errors import Interrupted, UserError
from sweep.plans.baselines import baseline_trials
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.plans.types import PLANNED, PlannedTrial, TrialMeta, planned_entry
from sweep.spec import SweepSpec, config_to_dict, parse_spec
from sweep.store import ResultsStore
from sweep.store.summary import is_feasible, pareto_keys


@dataclass
class SweepResult:
    name: str
    spec: dict
    results: str
    wall_s: float
    trials: list[dict]


def run_sweep(spec: SweepSpec, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Run a sweep from the start (grids skip trials already done in the tables)."""
    store = ResultsStore(results)
    store.check_writable()
    state = store.sweep_state(spec.name)
    if state and state["stage"] != "done":
        raise UserError(
            f"sweep {spec.name} in {results} was interrupted; continue it with "
            f"'sweep resume {spec.name} --results {results}'"
        )
    if state and spec.kind == "snas":
        if parse_spec(state["spec"]) != spec:
            raise UserError(
                f"sweep {spec.name} already ran in {results} with another spec; give this one another name "
                "(--set name=...)"
            )
        echo(f"sweep {spec.name} is already complete in {results}")
        return _run(spec, store, state, address, echo, resume=False)
    state = {"name": spec.name, "spec": config_to_dict(spec), "stage": "main"}
    return _run(spec, store, state, address, echo, resume=False)


def resume_sweep(name: str, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Continue an interrupted sweep: restore its Tune state, rerun no finished trial."""
    store = ResultsStore(results)
    state = store.sweep_state(name)
    if state is None:
        known = ", ".join(s["name"] for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    if state["stage"] == "done":
        echo(f"sweep {name} is already complete")
    return _run(parse_spec(state["spec"]), store, state, address, echo, resume=True)


def _run(
    spec: SweepSpec, store: ResultsStore, state: dict, address: str | None, echo: Echo, resume: bool
) -> SweepResult:
    started = time.perf_counter()
    planned = sc_sdc_trials(spec) if spec.kind == "sc_sdc" else [PlannedTrial(spec.trial, TrialMeta())]
    stages = ["main", "baselines"] if spec.kind == "snas" and spec.search.baselines else ["main"]
    todo = stages[stages.index(state["stage"]) :] if state["stage"] in stages else []
    if todo:
        with ThreadPoolExecutor(max_workers=1) as loader:
            loading = loader.submit(_load_data, spec, planned)  # reads the data while Ray starts
            with ray_session(address or spec.ray.address, spec, echo):
                data = loading.result()
                for stage in todo:
                    state["stage"] = stage
                    store.save_sweep_state(state)
                    _run_stage(spec, store, stage, data, planned, echo, resume=resume)
        state["stage"] = "done"
        store.save_sweep_state(state)
    rows = store.rows("trials", spec.name)
    return SweepResult(spec.name, state["spec"], store.root, time.perf_counter() - started, rows)


def _run_stage(
    spec: SweepSpec,
    store: ResultsStore,
    stage: str,
    data: Mapping[str, ArrayDataset],
    planned: list[PlannedTrial],
    echo: Echo,
    resume: bool,
) -> None:
    experiment = spec.name if stage == "main" else f"{spec.name}.{stage}"
    storage = _storage(spec, store)
    path = f"{storage.rstrip('/')}/{experiment}"
    metric = spec.search.metric if spec.kind == "snas" else "test_acc"
    done = {r["trial_key"]: r for r in store.rows("trials", spec.name) if r["status"] == "done"}
    finished = FinishedTrials.options(name=finished_trials_name(spec.name), get_if_exists=True).remote()
    ray.get(finished.add.remote({key: replay_result(row, row["epochs_done"]) for key, row in done.items()}))
    trainable = tune.with_resources(
        tune.with_parameters(
            run_planned_trial, data=data, threads=max(1, int(spec.resources.cpu)), finished=finished
        ),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    if resume and tune.Tuner.can_restore(path):
        echo(f"resuming {experiment} from {path}")
        with quiet_tune():  # restoring reads no result.json (we write none) and would warn per trial
            tuner = tune.Tuner.restore(
                path, trainable=trainable, resume_unfinished=True, resume_errored=False
            )
    else:
        callbacks = [ResultsCallback(store.root, spec.name, _constraint(spec))]
        run_config = tune.RunConfig(name=experiment, storage_path=storage, verbose=0, callbacks=callbacks)
        settings = {
            "reuse_actors": True,
            "max_concurrent_trials": spec.ray.max_concurrent_trials,
            "trial_name_creator": trial_name,
            "trial_dirname_creator": trial_name,
        }
        if spec.kind == "snas" and stage == "main":
            settings["max_concurrent_trials"] = spec.ray.max_concurrent_trials or trial_slots(spec)
            tune_config = search_config(spec, data, settings, echo)
            callbacks.append(ProgressCallback(spec.search.num_samples, metric, echo, _constraint(spec)))
            tuner = tune.Tuner(trainable, run_config=run_config, tune_config=tune_config)
        else:
            if stage == "baselines":
                planned = _baselines(spec, store, data, echo)
            todo, seen = [], set(done)
            for item in planned:  # each trial once, whatever the grid repeats
                if item.config.key not in seen:
                    seen.add(item.config.key)
                    todo.append(item)
            skipped = sum(1 for item in planned if item.config.key in done)
            if skipped:
                echo(f"{skipped} of {len(planned)} planned trials are done already; running {len(todo)}")
            if not todo:
                return
            callbacks.append(ProgressCallback(len(todo), metric, echo))
            grid = tune.grid_search([planned_entry(p) for p in todo])
            tuner = tune.Tuner(
                trainable,
                param_space={PLANNED: grid},
                run_config=run_config,
                tune_config=tune.TuneConfig(**settings),
            )
    expected = spec.search.num_samples if spec.kind == "snas" and stage == "main" else None
    if not _fit(tuner, expected):
        raise Interrupted(
            f"sweep {spec.name} was interrupted; continue it with 'sweep resume {spec.name} "
            f"--results {store.root}'"
        )
    if spec.kind == "snas" and stage == "main":
        _mark_pareto(store, spec)


def _baselines(
    spec: SweepSpec, store: ResultsStore, data: Mapping[str, ArrayDataset], echo: Echo
) -> list[PlannedTrial]:
    arrays = data[dataset_key(spec.dataset)]
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    best = _best(rows, spec.search.metric)
    if best is None:
        echo("no finished search trial: no baselines to train")
        return []
    echo(f"training the baselines at the best trial's {best['active_weights']:,} active weights")
    seeds = spec.search.baseline_seeds
    return baseline_trials(best, arrays.input_shape, arrays.num_classes, seeds)


def _constraint(spec: SweepSpec) -> int | None:
    return spec.search.max_active_weights if spec.kind == "snas" else None


def _fit(tuner: tune.Tuner, expected: int | None) -> bool:
    """Run Tune quietly; True when every trial ended.

    Tune returns normally after Ctrl-C, having saved its state, and marks the trials it cut short as
    terminated; only their last result lacks `done`. So a trial that neither failed nor reported
    `done`, or fewer trials than a search asked for, means the sweep was interrupted.
    """
    with quiet_tune():
        results = tuner.fit()
    ended = sum(1 for result in results if result.error is not None or (result.metrics or {}).get("done"))
    return ended == len(results) and (expected is None or len(results) >= expected)


def _best(rows: list[dict], metric: str) -> dict | None:
    usable = [r for r in rows if r["status"] == "done" and r.get(metric) is not None and is_feasible(r)]
    return max(usable, key=lambda r: r[metric]) if usable else None


def _mark_pareto(store: ResultsStore, spec: SweepSpec) -> None:
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    front = pareto_keys(rows, spec.search.metric)
    for row in rows:
        flag = row["trial_key"] in front
        if row["pareto"] is not flag:
            store.write("trials", spec.name, row["trial_key"], [{**row, "pareto": flag}])


def _load_data(spec: SweepSpec, planned: list[PlannedTrial]) -> dict[str, ArrayDataset]:
    """Each data set the sweep needs, read once on the driver; Tune ships it once per node."""
    specs = {dataset_key(spec.dataset): spec.dataset}
    for item in planned:
        specs.setdefault(dataset_key(item.config.dataset), item.config.dataset)
    return {key: load_arrays(dataset) for key, dataset in specs.items()}


def _storage(spec: SweepSpec, store: ResultsStore) -> str:
    if spec.ray.storage:
        return spec.ray.storage
    return f"{store.root.rstrip('/')}/_tune" if "://" in store.root else os.path.join(store.base, "_tune")
