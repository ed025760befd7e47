"""The driver's Tune callbacks that watch a run for the user.

Progress: one line per ended trial (how many are done and running, its result, the best so far), and one
line when a trial is retried after a failure or continues from a checkpoint.

Waiting for resources a cluster lacks (`ResourceWait`): trials that ask for more CPUs or GPUs than any node
of the cluster has stay pending. An autoscaler may still add such a node, so the sweep waits, says what it
waits for, and gives up after `resources.wait_s` seconds (the sweep can then be resumed where a node fits).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import ray
from ray import tune

from sweep.echo import Echo, duration
from sweep.engine.recording import error_message
from sweep.engine.session import stop_tune_run
from sweep.plans.snas import within_budget
from sweep.plans.types import PLANNED
from sweep.spec import parse_trial


class ProgressCallback(tune.Callback):
    """Progress lines on the driver; `budget` is the search's `max_active_weights`, if any."""

    def __init__(
        self, total: int, metric: str, echo: Echo = print, budget: int | None = None, max_failures: int = 0
    ) -> None:
        self.total, self.metric, self.echo, self.budget = total, metric, echo, budget
        self.max_failures = max_failures
        self._ended: dict[str, float | None] = {}  # trial id -> its metric (None: failed or over budget)
        self._began, self._ended_here = time.monotonic(), 0  # for the time left: this run's pace
        self._continued: set[tuple[str, int]] = set()  # (trial id, attempt) announced

    def __getstate__(self) -> dict:
        return {
            "total": self.total,
            "metric": self.metric,
            "budget": self.budget,
            "max_failures": self.max_failures,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "error")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        attempt = trial.num_failures + 1
        self.echo(
            f"[retry] trial {_key(trial)} failed ({error_message(trial)}); attempt {attempt} of "
            f"{self.max_failures + 1} continues from its last checkpoint"
        )

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        start = result.get("resumed_from")
        attempt = (trial.trial_id, trial.num_failures)
        if start is not None and attempt not in self._continued:
            self._continued.add(attempt)
            shorter = result.get("continued_from")
            if shorter:
                self.echo(f"[grow] trial {_key(trial)} continues trial {shorter} after its epoch {start}")
            else:
                self.echo(
                    f"[retry] trial {_key(trial)} continues after epoch {start} on node {result['node_id']}"
                )

    def _line(self, trials: list, trial: Any, outcome: str) -> None:
        for other in trials:  # trials that ended before a resume
            if other.status in ("TERMINATED", "ERROR") and other.trial_id not in self._ended:
                ranked = other.status != "ERROR" and self._feasible(other.last_result)
                self._ended[other.trial_id] = _metric(other.last_result, self.metric, not ranked)
        last = trial.last_result or {}
        outcome = "diverged" if last.get("diverged") else outcome
        if outcome == "done" and last.get("replayed"):
            outcome = "replayed"  # a configuration that had finished: its result again, no training
        elif outcome == "done" and last.get("epoch") != last.get("epochs_total"):
            outcome = "stopped"  # a scheduler (ASHA) ended it early
        if outcome in ("done", "replayed", "stopped") and not self._feasible(last):
            outcome = "infeasible"  # over search.max_active_weights: shown, never the best
        self._ended[trial.trial_id] = _metric(
            last, self.metric, outcome not in ("done", "replayed", "stopped")
        )
        self._ended_here += 1
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
            f"best {self.metric} {best} | {self._clock(len(self._ended))}"
        )

    def _clock(self, ended: int) -> str:
        """Time since this run began, and the time left at its pace so far."""
        elapsed = time.monotonic() - self._began
        left = max(0, self.total - ended) * elapsed / self._ended_here
        return (
            f"{duration(elapsed)} elapsed, about {duration(left)} left"
            if ended < self.total
            else (f"{duration(elapsed)} elapsed")
        )

    def _feasible(self, result: Mapping | None) -> bool:
        return within_budget((result or {}).get("active_weights"), self.budget)


def _key(trial: Any) -> str:
    return parse_trial(trial.config[PLANNED]["config"]).key


def _metric(result: Mapping | None, metric: str, failed: bool) -> float | None:
    value = (result or {}).get(metric)
    return value if not failed and isinstance(value, float) and value == value else None


CHECK_EVERY_S = 2.0  # how often the cluster's nodes are read while every trial waits
_gave_up: dict[str, str] = {}  # experiment -> why its run was stopped (read by the stage that ran it)


class ResourceWait(tune.Callback):
    """Watch one experiment: while no trial runs and no node could run one, wait at most `wait_s`."""

    def __init__(self, request: dict[str, float], wait_s: float, experiment: str, echo: Echo = print) -> None:
        self.request, self.wait_s, self.experiment, self.echo = request, wait_s, experiment, echo
        self._since: float | None = None  # when the wait began
        self._checked = 0.0

    def __getstate__(self) -> dict:
        return {"request": self.request, "wait_s": self.wait_s, "experiment": self.experiment}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        statuses = {t.status for t in trials}
        waiting = "PENDING" in statuses and "RUNNING" not in statuses
        lacking = unmet_request(self.request) if waiting else None
        if lacking is None:
            if self._since is not None:
                self.echo(f"{self.experiment}: a node with {describe(self.request)} joined; trials start")
            self._since = None
            return
        if self._since is None:
            self._since = now
            self.echo(
                f"{self.experiment}: waiting for a node with {describe(self.request)} per trial ({lacking}); "
                f"an autoscaler may add one; giving up after resources.wait_s={self.wait_s:g} s"
            )
        elif now - self._since > self.wait_s:
            asked, within = describe(self.request), f"within resources.wait_s={self.wait_s:g} s"
            _gave_up[self.experiment] = f"no node offered {asked} per trial {within} ({lacking})"
            stop_tune_run()


def gave_up(experiment: str) -> str | None:
    """Why the last run of `experiment` stopped waiting for resources, if it did; forgets it."""
    return _gave_up.pop(experiment, None)


def unmet_request(request: dict[str, float]) -> str | None:
    """None when some live node has all of `request`; otherwise what the largest node has instead."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(all(node.get(name.upper(), 0.0) >= asked for name, asked in request.items()) for node in nodes):
        return None
    best = {name: max((node.get(name.upper(), 0.0) for node in nodes), default=0.0) for name in request}
    return "its nodes have at most " + describe(best, zeros=True)


def describe(amounts: dict[str, float], zeros: bool = False) -> str:
    """`1 CPU, 1 GPU`; a zero amount only with `zeros` (a request of 0 GPUs asks for none)."""
    return ", ".join(f"{n:g} {name.upper()}" for name, n in amounts.items() if n or zeros or name == "cpu")
