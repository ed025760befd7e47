"""Tune callbacks on the driver: each trial's rows as its reports arrive, and one progress line per trial."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import ray
from ray import tune

from sweep.engine.recorder import TrialRecorder, facts_from_dict
from sweep.engine.session import Echo
from sweep.engine.worker import finished_trials_name
from sweep.plans.types import PLANNED, TrialMeta
from sweep.spec import METRICS, parse_trial
from sweep.store import EPOCHS, ResultsStore

_EPOCH_COLUMNS = [name for name in EPOCHS.names if name != "trial_key"]


class ResultsCallback(tune.Callback):
    """Writes each trial's rows as its reports arrive, and its `trials` row when it ends.

    The writes run on one background thread, in order: a worker's `tune.report` waits for the driver to
    take its result, so the driver's loop must not wait for Parquet files.
    """

    def __init__(self, results: str, sweep: str, max_active_weights: int | None = None) -> None:
        self.results, self.sweep, self.max_active_weights = results, sweep, max_active_weights
        self._recorders: dict[str, TrialRecorder] = {}
        self._store: ResultsStore | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def __getstate__(self) -> dict:  # pickled into Tune's experiment state: keep only the settings
        return {"results": self.results, "sweep": self.sweep, "max_active_weights": self.max_active_weights}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _recorder(self, trial: tune.experiment.Trial, fresh: bool = False) -> TrialRecorder:
        if fresh or trial.trial_id not in self._recorders:
            if self._store is None:
                self._store = ResultsStore(self.results)
            entry = trial.config[PLANNED]
            self._recorders[trial.trial_id] = TrialRecorder(
                self._store, self.sweep, parse_trial(entry["config"]), TrialMeta(**entry["meta"])
            )
        return self._recorders[trial.trial_id]

    def _write(self, action: Callable[..., object], *args: object, **kwargs: object) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-results")
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        self._pending.append(self._writer.submit(action, *args, **kwargs))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._recorder(trial, fresh=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not result.get("replayed"):
            metrics = {name: result.get(name) for name in _EPOCH_COLUMNS}
            started = datetime.fromtimestamp(result["trial_started"], UTC)
            facts = facts_from_dict(result["facts"])
            self._write(self._recorder(trial).add_epoch, metrics, result["layers"], facts, started)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        if last.get("replayed"):
            return
        recorder = self._recorder(trial)
        if last.get("diverged"):
            status = "diverged"
        else:
            status = "done" if last.get("epoch") == recorder.config.train.epochs else "stopped"
        extra = {}
        if self.max_active_weights is not None and last.get("active_weights") is not None:
            extra["feasible"] = within_budget(last, self.max_active_weights)
        self._write(recorder.finish, status, ended_at=datetime.now(UTC), **extra)
        if status == "done":  # the searcher may propose this configuration again: replay, don't retrain
            with contextlib.suppress(ValueError):  # no such actor: a driver of an older sweep
                finished = ray.get_actor(finished_trials_name(self.sweep))
                finished.add.remote({recorder.config.key: replay_result(last, last["epoch"])})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(self._recorder(trial).finish, "error", error_message(trial), ended_at=datetime.now(UTC))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Every row is on disk before the sweep returns; a failed write fails the sweep."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        failures = [f.exception() for f in self._pending if f.exception()]
        self._pending = []
        if failures:
            raise failures[0]


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


class ProgressCallback(tune.Callback):
    """One line per finished trial: how many are done and running, its result, and the best so far."""

    def __init__(self, total: int, metric: str, echo: Echo = print, budget: int | None = None) -> None:
        self.total, self.metric, self.echo, self.budget = total, metric, echo, budget
        self._ended: dict[str, float | None] = {}  # trial id -> its metric (None: failed or over budget)

    def __getstate__(self) -> dict:
        return {"total": self.total, "metric": self.metric, "budget": self.budget}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "error")

    def _line(self, trials: list, trial: Any, outcome: str) -> None:
        for other in trials:  # trials that ended before a resume
            if other.status in ("TERMINATED", "ERROR") and other.trial_id not in self._ended:
                ranked = other.status != "ERROR" and within_budget(other.last_result, self.budget)
                self._ended[other.trial_id] = _metric(other.last_result, self.metric, not ranked)
        last = trial.last_result or {}
        outcome = "diverged" if last.get("diverged") else outcome
        if outcome == "done" and last.get("replayed"):
            outcome = "replayed"  # a configuration that had finished: its result again, no training
        if outcome in ("done", "replayed") and not within_budget(last, self.budget):
            outcome = "infeasible"  # over search.max_active_weights: shown, never the best
        self._ended[trial.trial_id] = _metric(last, self.metric, outcome not in ("done", "replayed"))
        running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in self._ended)
        values = [v for v in self._ended.values() if v is not None]
        if outcome == "error":
            detail = error_message(trial)
        else:
            value = last.get(self.metric)
            shown = f"{value:.4f}" if isinstance(value, float) else "-"
            detail = f"{self.metric} {shown}  active {last.get('active_weights') or 0:,}"
        best = f"{max(values):.4f}" if values else "-"
        self.echo(
            f"[{len(self._ended):>3}/{self.total}] {outcome:<8} {detail}  | running {running}, "
            f"best {self.metric} {best}"
        )


def within_budget(result: Mapping | None, budget: int | None) -> bool:
    """Whether a trial's result keeps to `search.max_active_weights` (no budget: always)."""
    return budget is None or ((result or {}).get("active_weights") or 0) <= budget


def _metric(result: Mapping | None, metric: str, failed: bool) -> float | None:
    value = (result or {}).get(metric)
    return value if not failed and isinstance(value, float) and value == value else None


def replay_result(values: Mapping[str, Any], epoch: int) -> dict:
    """What a finished trial reports again when its configuration comes up again (a `trials` row or the
    trial's last result): enough for the searcher, the scheduler and the progress line."""
    return {"epoch": epoch, **{name: values.get(name) for name in ("trial_key", "active_weights", *METRICS)}}
