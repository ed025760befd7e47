"""The driver's record of a Tune run: each trial's rows as its reports arrive, its `trials` row at its end.

Writes run on one background thread, in order: a worker's `tune.report` waits for the driver to take its
result, so the driver's loop must not wait for Parquet files. Each write runs under the store deadline and
behind the driver's lease (`sweep/store/fence.py`): the first write that fails, does not end in time or
finds the lease unproven stops the sweep at once (Tune saves its state, as on Ctrl-C), and the sweep ends
with that one error; `sweep resume` then continues it and rewrites what was missing.

Who else hears of a sweep's rows as they are written: a live tracker, which the caller of `run_sweep` or
`resume_sweep` brings (the engine knows nothing of trackers). Tune rebuilds the results callback when a sweep
resumes, so the callback finds its sweep's watcher here, by the sweep's name, in this driver process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from ray import tune

from sweep.engine.recorder import EPOCH_COLUMNS, TrialRecorder, facts_from_dict
from sweep.engine.session import stop_tune_run
from sweep.errors import ResultsError
from sweep.plans.snas import within_budget
from sweep.plans.types import PLANNED, entry_meta
from sweep.spec import parse_trial
from sweep.store import ResultsStore
from sweep.store.deadline import store_deadline_s, store_named, within
from sweep.store.fence import Fenced, held, holding
from sweep.store.location import store_stopped


class ResultsCallback(tune.Callback):
    """Keeps every trial's rows in the results store up to date while the sweep runs."""

    def __init__(self, results: str, sweep: str, max_active_weights: int | None = None) -> None:
        self.results, self.sweep, self.max_active_weights = results, sweep, max_active_weights
        self._recorders: dict[str, TrialRecorder] = {}
        self._store: ResultsStore | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self.failure: ResultsError | None = None
        self._fence = held()  # the driver's lease: built (or restored) inside its block, on its thread

    def __getstate__(self) -> dict:  # pickled into Tune's experiment state: keep only the settings
        return {"results": self.results, "sweep": self.sweep, "max_active_weights": self.max_active_weights}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def recorder(self, trial: Any) -> TrialRecorder:
        """The trial's recorder; a trial retried after a lost node keeps the one it had."""
        if trial.trial_id not in self._recorders:
            if self._store is None:
                self._store = ResultsStore(self.results)
            entry = trial.config[PLANNED]
            self._recorders[trial.trial_id] = TrialRecorder(
                self._store, self.sweep, parse_trial(entry["config"]), entry_meta(entry)
            )
        return self._recorders[trial.trial_id]

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """Record the epoch, then drop its bulk (layers, facts, history) from the result Tune keeps for the
        trial's whole life: the driver's memory must not grow with every epoch of every trial."""
        if result.get("replayed"):
            return
        started = datetime.fromtimestamp(result["trial_started"], UTC)
        facts = facts_from_dict(result.pop("facts"))
        metrics = {name: result.get(name) for name in EPOCH_COLUMNS}
        layers, history = result.pop("layers"), result.pop("history", ())
        self._write(self._epoch, self.recorder(trial), metrics, layers, facts, started, history)

    def _epoch(self, recorder: TrialRecorder, *report: Any) -> None:
        recorder.add_epoch(*report)
        if (watcher := watcher_of(self.sweep)) is not None:
            watcher.rows(recorder.row("running"), recorder.epochs, recorder.layers)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        if last.get("replayed"):
            return
        recorder = self.recorder(trial)
        if last.get("diverged"):
            status = "diverged"
        else:
            status = "done" if last.get("epoch") == last.get("epochs_total") else "stopped"
        self._finish(trial, recorder, status, None)
        self._write(recorder.store.save_journal, self.sweep)  # a remote store's copy of the search's study

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, self.recorder(trial), "error", error_message(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Every row is on disk before the sweep returns; a failed write fails the sweep, in one line."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self._pending = []
        if self.failure is not None:
            raise self.failure

    def _finish(self, trial: Any, recorder: TrialRecorder, status: str, error: str | None) -> None:
        last = trial.last_result or {}
        extra: dict[str, Any] = {"attempts": trial.num_failures + 1, "node_id": last.get("node_id")}
        if last.get("elapsed_s") is not None:  # its time training, over every attempt and run
            extra["wall_s"] = last["elapsed_s"]
        if self.max_active_weights is not None and last.get("active_weights") is not None:
            extra["feasible"] = within_budget(last["active_weights"], self.max_active_weights)
        self._write(self._end, recorder, status, error, ended_at=datetime.now(UTC), **extra)
        self._recorders.pop(trial.trial_id, None)  # its rows are on their way; nothing more comes

    def _end(self, recorder: TrialRecorder, *args: Any, **kwargs: Any) -> None:
        row = recorder.finish(*args, **kwargs)
        if (watcher := watcher_of(self.sweep)) is not None:
            watcher.rows(row, recorder.epochs, recorder.layers)

    def _write(self, action: Callable[..., object], *args: object, **kwargs: object) -> None:
        if self.failure is not None:
            return  # the sweep is stopping: what is not written now, `sweep resume` writes
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-results")
        self._pending = [f for f in self._pending if not f.done()]
        future = self._writer.submit(self._guarded, partial(action, *args, **kwargs))
        future.add_done_callback(self._check)
        self._pending.append(future)

    def _guarded(self, write: Callable[[], object]) -> object:
        with holding(self._fence):
            return within(store_deadline_s(), store_named(self.results), "writing rows", write)

    def _check(self, future: Future) -> None:
        """On the writer thread: the first failed write stops the sweep now, not after every trial."""
        error = future.exception()
        if error is None or self.failure is not None:
            return
        reason = (
            error if isinstance(error, ResultsError) else ResultsError(f"{type(error).__name__}: {error}")
        )
        self.failure = (
            error
            if isinstance(error, Fenced)
            else ResultsError(store_stopped(self.sweep, self.results, reason))
        )
        if self._fence is not None:
            self._fence.stop(self.failure)  # and exits if the run does not stop within the deadline
        else:
            stop_tune_run()


def error_message(trial: Any) -> str:
    """The exception line of the trial's traceback (the full text stays in Tune's error file)."""
    try:
        with open(trial.error_file) as handle:
            lines = [line.strip() for line in handle.read().splitlines() if line.strip()]
    except (OSError, TypeError):
        return "the trial failed (no error file)"
    for line in reversed(lines):
        head = line.split(":", 1)[0].split(".")[-1]
        if head.endswith(("Error", "Exception", "Interrupt")) or head in ("RayTaskError", "RayActorError"):
            return line
    return lines[-1] if lines else "the trial failed"


class RowWatcher(Protocol):
    def rows(self, trial: dict, epochs: Sequence[dict], layers: Sequence[dict]) -> None:
        """A trial's rows as the tables now hold them (its `trials` row with status running until it
        ends). Called on the results writer's thread once the rows are written: it must return at once and
        never raise."""

    def close(self) -> None:
        """The sweep's driver is done with it."""


_WATCHERS: dict[str, RowWatcher] = {}


@contextmanager
def watching(sweep: str, watcher: RowWatcher | None) -> Iterator[None]:
    """`watcher` hears of the sweep's rows while the block runs (None: nobody), and is closed after it."""
    if watcher is None:
        yield
        return
    _WATCHERS[sweep] = watcher
    try:
        yield
    finally:
        _WATCHERS.pop(sweep, None)
        watcher.close()


def watcher_of(sweep: str) -> RowWatcher | None:
    return _WATCHERS.get(sweep)
