"""No trial ends without its row: after Tune returns, trials whose `trials` row is missing are recorded again.

That happens when a write failed (the sweep then stopped at once) or when a driver died after Tune saw a
trial end and before its row was written. An errored trial gets its row from its error. Any other trial
runs again; it finds its last checkpoint (its trial folder is named by its key), which holds its whole
history, and finding nothing left to train it reports that history, which the recorder writes as rows. A
trial without a checkpoint (`train.checkpoint_every: 0`) trains again. The stage is complete only when every
trial has its row.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ray import tune

from sweep.engine.experiment import grid_tuner, run_config, tune_storage
from sweep.engine.progress import ProgressCallback
from sweep.engine.recorder import TrialRecorder
from sweep.engine.recording import ResultsCallback
from sweep.engine.session import quiet_tune
from sweep.engine.sweep_run import SweepRun
from sweep.engine.worker import REPLAY
from sweep.errors import ResultsError
from sweep.plans.types import PLANNED, entry_meta
from sweep.spec import SweepSpec, parse_trial
from sweep.store import ResultsStore
from sweep.store.location import shown, tune_location


def unrecorded(results: tune.ResultGrid, store: ResultsStore, sweep: str) -> list[tune.Result]:
    """The trials Tune ran (replays aside) that lack their `trials` row or their `epochs` rows."""
    recorded = recorded_keys(store, sweep)
    return [result for result in results if _key(result.config or {}) not in recorded | {None}]


def unrecorded_trials(spec: SweepSpec, store: ResultsStore, experiments: list[str]) -> int:
    """How many trials of a sweep's saved Tune experiments lack rows (read from Tune's state, no Ray)."""
    recorded = recorded_keys(store, spec.name)
    missing = set()
    for experiment in experiments:
        path, fs = tune_location(f"{tune_storage(spec, store).rstrip('/')}/{experiment}")
        if tune.Tuner.can_restore(path, storage_filesystem=fs):
            with quiet_tune():
                trials = tune.ExperimentAnalysis(path, storage_filesystem=fs).trials
            missing |= {_key(t.config or {}) for t in trials} - recorded - {None}
    return len(missing)


def recorded_keys(store: ResultsStore, sweep: str) -> set[str]:
    """Trials with their `trials` row and their `epochs` rows (a trial that failed before its first epoch
    has none)."""
    rows = store.read("trials", sweep, columns=["trial_key", "status"]).to_pylist()
    failed = {row["trial_key"] for row in rows if row["status"] == "error"}
    return failed | ({row["trial_key"] for row in rows} & store.keys("epochs", sweep))


def _key(config: dict) -> str | None:
    """A Tune trial's key; None for a replay, which has no rows of its own."""
    return None if config.get(REPLAY) is not None else parse_trial(config[PLANNED]["config"]).key


def repair_unrecorded(run: SweepRun, results: tune.ResultGrid, trainable: object, experiment: str) -> None:
    """Record the trials Tune ran whose rows did not land: a failed trial's error row, and every other one
    trained again from its checkpoint in a repair experiment (`<experiment>.repair`)."""
    spec, store, echo = run.spec, run.store, run.echo
    missing = unrecorded(results, store, spec.name)
    if not missing:
        return
    for result in (r for r in missing if r.error is not None):
        entry = result.config[PLANNED]
        recorder = TrialRecorder(store, spec.name, parse_trial(entry["config"]), entry_meta(entry))
        recorder.finish("error", f"{type(result.error).__name__}: {result.error}", ended_at=datetime.now(UTC))
    again = [r for r in missing if r.error is None]
    if again:
        echo(f"{len(again)} trials ended without their rows; recording them again from their checkpoints")
        entries = [r.config[PLANNED] for r in again]
        callbacks = [ResultsCallback(store.root, spec.name), ProgressCallback(len(entries), "test_acc", echo)]
        config = run_config(spec, store, f"{experiment}.repair", callbacks)
        grid_tuner(spec, trainable, entries, config).fit()
    left = unrecorded(results, store, spec.name)
    if left:
        raise ResultsError(
            f"sweep {spec.name}: {len(left)} trials ended without their rows in {store.root}; "
            f"run 'sweep resume {spec.name} --results {shown(store.root)}' to record them"
        )
