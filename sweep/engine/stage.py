"""One stage of a sweep as one Tune experiment: built (or restored after an interruption), run, and checked.

A stage is the SNAS search, the SNAS baselines, or a grid of planned trials, under
`<storage>/<sweep name>[.<stage>]`. Trials checkpoint as they train (`engine/worker.py`) and Tune retries a
failed trial up to `ray.max_failures` times from its latest checkpoint, on any node. When Tune returns, every
trial it ran must have its `trials` row; `engine/repair.py` records again those whose rows did not land.
"""

from __future__ import annotations

import pickle
import re
from typing import NoReturn

import pyarrow.fs as pafs
from ray import tune

from sweep.echo import Echo
from sweep.engine.experiment import (
    ended_trials,
    fit,
    grid_tuner,
    make_trainable,
    run_config,
    tune_storage,
    tuner_settings,
)
from sweep.engine.growth import Generation
from sweep.engine.progress import ProgressCallback, gave_up
from sweep.engine.recording import ResultsCallback
from sweep.engine.repair import repair_unrecorded
from sweep.engine.search.searcher import search_config
from sweep.engine.search.study import proposals_made
from sweep.engine.session import quiet_tune, trial_slots
from sweep.engine.sweep_run import SweepRun
from sweep.engine.todo import planned_baselines, trials_to_run
from sweep.errors import Interrupted, UserError, first_line
from sweep.plans.types import planned_entry
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.location import open_filesystem, shown, tune_location
from sweep.store.summary import pareto_keys

# A stage's experiment folders: NAME, NAME.baselines, NAME.grow-G, NAME.grow-G.baselines, each maybe .repair
_SUFFIX = re.compile(r"(\.grow-\d+)?(\.baselines)?(\.repair)?")
FIRST_RUN = Generation()
# What reading a saved Tune state that a killed driver left half-written raises
UNREADABLE_STATE = (
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    AttributeError,
    OSError,
    pickle.UnpicklingError,
)


def run_stage(run: SweepRun, stage: str, generation: Generation = FIRST_RUN) -> int:
    """Run one stage; return how many of its proposals were replays (configurations proposed again)."""
    spec, store = run.spec, run.store
    experiment = experiment_name(spec, stage, generation.number)
    path = f"{tune_storage(spec, store).rstrip('/')}/{experiment}"
    trainable = make_trainable(spec, run.data, checkpoints=path)
    search = spec.kind == "snas" and stage == "main"
    if search:  # a remote store's journal, fetched to the working copy that Tune's saved searcher names
        store.study_journal(spec.name)
    restored = _restored(path, trainable, run.echo) if run.resume else None
    if restored is not None:
        tuner, ended_before = restored
    else:
        tuner, ended_before = _new_tuner(run, stage, trainable, generation), frozenset()
        if tuner is None:
            return 0
    try:
        results = fit(tuner, ended_before)
    finally:
        if search:
            store.save_journal(spec.name)
    if results is not None and search and proposals_made(spec, store) < spec.search.num_samples:
        results = None  # stopped before the searcher made every proposal
    if results is None:
        _stopped(spec, store, experiment)
    repair_unrecorded(run, results, trainable, experiment)
    if search:
        _mark_pareto(store, spec)
    return sum(1 for result in results if (result.metrics or {}).get("replayed"))


def _stopped(spec: SweepSpec, store: ResultsStore, experiment: str) -> NoReturn:
    """A stage Tune returned from before its end: a trial no node can take, or an interruption."""
    lacking = gave_up(experiment)
    if lacking:
        raise UserError(
            f"sweep {spec.name}: {lacking}; lower resources.cpu or resources.gpu, or continue it with "
            f"'sweep resume {spec.name} --results {shown(store.root)}' once the cluster has such a node"
        )
    raise Interrupted(
        f"sweep {spec.name} was interrupted; continue it with 'sweep resume {spec.name} "
        f"--results {shown(store.root)}'"
    )


def _restored(path: str, trainable: object, echo: Echo) -> tuple[tune.Tuner, frozenset[str]] | None:
    """The stage's Tune run as it was saved, or None when its saved state cannot be read (a driver killed
    while Tune wrote it): the stage then starts again, skipping finished trials, and each trial cut short
    continues from its own checkpoint."""
    if not tune.Tuner.can_restore(*tune_location(path)):
        return None
    try:
        ended_before = ended_trials(path)
        where, fs = tune_location(path)
        with quiet_tune():  # restoring reads no result.json (we write none) and would warn per trial
            tuner = tune.Tuner.restore(
                where,
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                storage_filesystem=fs,
            )
    except UNREADABLE_STATE as exc:
        reason = first_line(exc)[:200]
        echo(
            f"the Tune state in {path} cannot be read ({reason}); starting the stage again: finished trials "
            "are skipped, and trials cut short continue from their checkpoints"
        )
        return None
    echo(f"resuming {path.rpartition('/')[2]} from {path}")
    return tuner, ended_before


def forget_experiments(spec: SweepSpec, store: ResultsStore) -> None:
    """Delete the Tune state and checkpoints left under this sweep's experiment names (any growth's)."""
    storage = tune_storage(spec, store)
    fs, base = open_filesystem(storage)
    listing = fs.get_file_info(pafs.FileSelector(base.rstrip("/"), allow_not_found=True))
    for info in listing:
        name = info.base_name
        ours = name.startswith(spec.name) and _SUFFIX.fullmatch(name[len(spec.name) :])
        if info.type == pafs.FileType.Directory and ours:
            fs.delete_dir(info.path)


def experiment_name(spec: SweepSpec, stage: str, generation: int = 0) -> str:
    """`NAME` and `NAME.baselines` for the first run; each growth's own, `NAME.grow-G[.baselines]`."""
    name = spec.name if not generation else f"{spec.name}.grow-{generation}"
    return name if stage == "main" else f"{name}.baselines"


def experiments_of(spec: SweepSpec, stage: str, generation: int) -> tuple[str, ...]:
    """Every experiment (repairs included) of a stage up to `generation`: where its checkpoints may be."""
    names = [experiment_name(spec, stage, g) for g in range(generation, -1, -1)]
    return tuple(f"{name}{suffix}" for name in names for suffix in ("", ".repair"))


def _new_tuner(run: SweepRun, stage: str, trainable: object, generation: Generation) -> tune.Tuner | None:
    """The stage's new Tune run: the search, or the grid of trials still to run (None: nothing to run)."""
    spec, store, echo = run.spec, run.store, run.echo
    experiment = experiment_name(spec, stage, generation.number)
    budget = spec.search.max_active_weights if spec.kind == "snas" else None
    metric = spec.search.metric if spec.kind == "snas" else "test_acc"
    settings = tuner_settings(spec)
    if spec.kind == "snas" and stage == "main":
        settings["max_concurrent_trials"] = spec.ray.max_concurrent_trials or trial_slots(spec)
        tune_config = search_config(run, settings, generation)
        if tune_config is None:
            return None
        progress = ProgressCallback(tune_config.num_samples, metric, echo, budget, spec.ray.max_failures)
        recording = ResultsCallback(store.root, spec.name, budget)
        return tune.Tuner(
            trainable,
            run_config=run_config(spec, store, experiment, [recording, progress]),
            tune_config=tune_config,
        )
    planned = planned_baselines(spec, store, run.data, echo) if stage == "baselines" else run.planned
    todo = trials_to_run(run, planned, generation, experiments_of(spec, stage, generation.number))
    if not todo:
        return None
    progress = ProgressCallback(len(todo), metric, echo, max_failures=spec.ray.max_failures)
    callbacks = [ResultsCallback(store.root, spec.name), progress]
    entries = [planned_entry(p) for p in todo]
    return grid_tuner(spec, trainable, entries, run_config(spec, store, experiment, callbacks))


def _mark_pareto(store: ResultsStore, spec: SweepSpec) -> None:
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    front = pareto_keys(rows, spec.search.metric)
    for row in rows:
        flag = row["trial_key"] in front
        if row["pareto"] is not flag:
            store.write("trials", spec.name, row["trial_key"], [{**row, "pareto": flag}])
