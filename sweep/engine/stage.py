"""One stage of a sweep as one Tune experiment: built (or restored after an interruption), run, and checked.

A stage is the SNAS search, the SNAS baselines, or a grid of planned trials, under
`<storage>/<sweep name>[.<stage>]`. Trials checkpoint as they train (`engine/worker.py`) and Tune retries a
failed trial up to `ray.max_failures` times from its latest checkpoint, on any node. When Tune returns, every
trial it ran must have its `trials` row; `engine/repair.py` records again those whose rows did not land.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow.fs as pafs
from ray import tune

from sweep.core.data import ArrayDataset
from sweep.engine.experiment import (
    ended_trials,
    fit,
    grid_tuner,
    make_trainable,
    run_config,
    tune_storage,
    tuner_settings,
)
from sweep.engine.progress import ProgressCallback
from sweep.engine.recording import ResultsCallback
from sweep.engine.repair import repair_unrecorded
from sweep.engine.searcher import search_config
from sweep.engine.session import Echo, quiet_tune, trial_slots
from sweep.engine.storage import filesystem
from sweep.engine.waiting import gave_up
from sweep.engine.worker import dataset_key
from sweep.errors import Interrupted, UserError
from sweep.plans.baselines import baseline_trials
from sweep.plans.types import PlannedTrial, planned_entry
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.summary import is_feasible, pareto_keys


def run_stage(
    spec: SweepSpec,
    store: ResultsStore,
    stage: str,
    data: Mapping[str, ArrayDataset],
    planned: list[PlannedTrial],
    echo: Echo,
    resume: bool,
) -> int:
    """Run one stage; return how many of its proposals were replays (configurations proposed again)."""
    experiment = experiment_name(spec, stage)
    storage = tune_storage(spec, store)
    path = f"{storage.rstrip('/')}/{experiment}"
    trainable = make_trainable(spec, data, checkpoints=path)
    ended_before: frozenset[str] = frozenset()
    if resume and tune.Tuner.can_restore(path):
        echo(f"resuming {experiment} from {path}")
        ended_before = ended_trials(path)
        with quiet_tune():  # restoring reads no result.json (we write none) and would warn per trial
            tuner = tune.Tuner.restore(
                path, trainable=trainable, resume_unfinished=True, resume_errored=False
            )
    else:
        if stage == "baselines":
            planned = _baselines(spec, store, data, echo)
        tuner = _new_tuner(spec, store, stage, data, planned, trainable, experiment, echo)
        if tuner is None:
            return 0
    search = spec.kind == "snas" and stage == "main"
    results = fit(tuner, spec.search.num_samples if search else None, ended_before)
    if results is None:
        lacking = gave_up(experiment)
        if lacking:
            raise UserError(
                f"sweep {spec.name}: {lacking}; lower resources.cpu or resources.gpu, or continue it with "
                f"'sweep resume {spec.name} --results {store.root}' once the cluster has such a node"
            )
        raise Interrupted(
            f"sweep {spec.name} was interrupted; continue it with 'sweep resume {spec.name} "
            f"--results {store.root}'"
        )
    repair_unrecorded(spec, store, results, trainable, experiment, echo)
    if search:
        _mark_pareto(store, spec)
    return sum(1 for result in results if (result.metrics or {}).get("replayed"))


def forget_experiments(spec: SweepSpec, store: ResultsStore) -> None:
    """Delete the Tune state and checkpoints left under this sweep's experiment names."""
    storage = tune_storage(spec, store)
    fs, base = filesystem(storage)
    for stage in ("main", "baselines"):
        for experiment in (experiment_name(spec, stage), f"{experiment_name(spec, stage)}.repair"):
            path = f"{base.rstrip('/')}/{experiment}"
            if fs.get_file_info(path).type == pafs.FileType.Directory:
                fs.delete_dir(path)


def experiment_name(spec: SweepSpec, stage: str) -> str:
    return spec.name if stage == "main" else f"{spec.name}.{stage}"


def _new_tuner(
    spec: SweepSpec,
    store: ResultsStore,
    stage: str,
    data: Mapping[str, ArrayDataset],
    planned: list[PlannedTrial],
    trainable: object,
    experiment: str,
    echo: Echo,
) -> tune.Tuner | None:
    budget = spec.search.max_active_weights if spec.kind == "snas" else None
    metric = spec.search.metric if spec.kind == "snas" else "test_acc"
    settings = tuner_settings(spec)
    if spec.kind == "snas" and stage == "main":
        settings["max_concurrent_trials"] = spec.ray.max_concurrent_trials or trial_slots(spec)
        progress = ProgressCallback(spec.search.num_samples, metric, echo, budget, spec.ray.max_failures)
        return tune.Tuner(
            trainable,
            run_config=run_config(
                spec, store, experiment, [ResultsCallback(store.root, spec.name, budget), progress]
            ),
            tune_config=search_config(spec, store, data, settings, echo),
        )
    done = {r["trial_key"] for r in store.rows("trials", spec.name) if r["status"] == "done"}
    todo, seen = [], set(done)
    for item in planned:  # each trial once, whatever the grid repeats
        if item.config.key not in seen:
            seen.add(item.config.key)
            todo.append(item)
    skipped = sum(1 for item in planned if item.config.key in done)
    if skipped:
        echo(f"{skipped} of {len(planned)} planned trials are done already; running {len(todo)}")
    if not todo:
        return None
    progress = ProgressCallback(len(todo), metric, echo, max_failures=spec.ray.max_failures)
    callbacks = [ResultsCallback(store.root, spec.name), progress]
    return grid_tuner(spec, store, trainable, [planned_entry(p) for p in todo], experiment, callbacks)


def _baselines(
    spec: SweepSpec, store: ResultsStore, data: Mapping[str, ArrayDataset], echo: Echo
) -> list[PlannedTrial]:
    arrays = data[dataset_key(spec.dataset)]
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    usable = [r for r in rows if r["status"] == "done" and r.get(spec.search.metric) is not None]
    usable = [r for r in usable if is_feasible(r)]
    if not usable:
        echo("no finished search trial: no baselines to train")
        return []
    best = max(usable, key=lambda r: r[spec.search.metric])
    echo(f"training the baselines at the best trial's {best['active_weights']:,} active weights")
    return baseline_trials(best, arrays.input_shape, arrays.num_classes, spec.search.baseline_seeds)


def _mark_pareto(store: ResultsStore, spec: SweepSpec) -> None:
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    front = pareto_keys(rows, spec.search.metric)
    for row in rows:
        flag = row["trial_key"] in front
        if row["pareto"] is not flag:
            store.write("trials", spec.name, row["trial_key"], [{**row, "pareto": flag}])
