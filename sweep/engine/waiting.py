"""Waiting for resources a cluster lacks: trials that ask for more CPUs or GPUs than any node of the cluster
has stay pending. An autoscaler may still add such a node, so the sweep waits, says what it waits for, and
gives up after `resources.wait_s` seconds (the sweep can then be resumed where a node fits)."""

from __future__ import annotations

import time
from typing import Any

import ray
from ray import tune

from sweep.echo import Echo
from sweep.engine.session import stop_tune_run

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
