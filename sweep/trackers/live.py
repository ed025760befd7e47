"""Live tracking: a sweep's runs sent to MLflow while it runs, as each epoch reaches the tables.

The results writer hands each trial's rows to `LiveTracker.rows`, which only keeps them as the trial's
latest snapshot (one per trial: the pending work is bounded by the number of trials, and a newer snapshot
replaces an older one, since each holds every epoch so far). One thread of its own sends the snapshots
with `sweep export`'s own code, which logs only the epochs after the last step MLflow holds: a trial retried
on another node, or a sweep resumed after Ctrl-C, continues its run with no epoch logged twice, and runs
are the same as an export after the sweep would make.

A tracker that is away, slow or refuses a value never costs a row or stops the sweep: the first failure is
one line naming the export that fills the gap afterwards, and the tracker sends nothing more. At the end the
driver waits a bounded time for the last snapshots. The tracker's URI holds no credentials (MLflow reads
them from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN), so none reaches the tables, the
printed lines or Ray.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Sequence

from sweep.errors import UserError, first_line
from sweep.store.location import shown
from sweep.trackers.mlflow_export import default_uri, export_mlflow, masked
from sweep.trackers.runs import TrialRun, trial_run

FLUSH_EVERY_S = 5.0  # a round of requests every 5 s at most: epochs that arrive meanwhile go together
CLOSE_WAIT_S = 30.0  # at the end, how long the driver waits for the tracker to take the last epochs
# Each request fails fast: a tracker that is down or hung must not hold the last epochs for minutes.
REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tracker_uri(uri: str | None, results: str) -> str:
    """MLflow's URI for a sweep's results (None: `sweep export`'s default); one with credentials in it is
    refused, in one line."""
    if uri and masked(uri) != uri:  # it held a user:password@
        raise UserError(
            f"track.mlflow.uri {masked(uri)}: put no credentials in the URI (the spec is saved with the "
            "results); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
        )
    return uri or default_uri(results)


class LiveTracker:
    """Sends a sweep's runs to MLflow at `uri` as epochs arrive (a `RowWatcher` of the engine)."""

    def __init__(self, sweep: str, uri: str, results: str, echo: Callable[[str], object] = print) -> None:
        self.sweep, self.uri, self.results, self.echo = sweep, uri, results, echo
        self.failure: str | None = None
        self.sent = 0  # snapshots the tracker took
        self._latest: dict[str, TrialRun] = {}
        self._wake = threading.Condition()
        self._closing = False
        self._saved: dict[str, str | None] = {}
        self._thread: threading.Thread | None = None  # started by the first rows: a sweep refused sends none

    def _start(self) -> None:
        self._saved = {name: os.environ.get(name) for name in REQUESTS}
        os.environ.update({name: value for name, value in REQUESTS.items() if self._saved[name] is None})
        self._thread = threading.Thread(target=self._send, name="sweep-tracking", daemon=True)
        self._thread.start()
        self.echo(f"tracking sweep {self.sweep} live in MLflow at {masked(self.uri)}")

    def rows(self, trial: dict, epochs: Sequence[dict], layers: Sequence[dict]) -> None:
        if self.failure is not None:
            return
        try:
            run = trial_run(self.sweep, trial, epochs, layers)  # Pareto tags: when the sweep is exported
        except Exception as exc:  # a bug here must not cost the sweep a row
            self._fail(f"its runs could not be made ({first_line(exc)})")
            return
        with self._wake:
            if self._thread is None:
                self._start()
            self._latest[run.trial_key] = run
            self._wake.notify()

    def close(self) -> None:
        if self._thread is None:
            return
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(CLOSE_WAIT_S)
        for name in (name for name, value in self._saved.items() if value is None):
            os.environ.pop(name, None)
        if self._thread.is_alive() and self.failure is None:
            self._fail(f"it did not take the last epochs within {CLOSE_WAIT_S:.0f}s")

    def _send(self) -> None:
        """The tracker's thread: the latest snapshots, a round at a time; at the end one last round, which
        also ends the sweep's parent run."""
        while True:
            with self._wake:
                while not self._latest and not self._closing:
                    self._wake.wait()
                batch, self._latest, last = list(self._latest.values()), {}, self._closing
            try:
                export_mlflow(batch, self.sweep, self.uri, echo=lambda _: None, sweep_ended=last)
            except Exception as exc:  # MLflow's, its HTTP client's, the OS's: the tables stay whole
                self._fail(first_line(exc))
                return
            self.sent += len(batch)
            if last:
                return
            with self._wake:  # a round every FLUSH_EVERY_S at most; the end of the sweep is not kept waiting
                self._wake.wait_for(lambda: self._closing, timeout=FLUSH_EVERY_S)

    def _fail(self, reason: str) -> None:
        if self.failure is not None:
            return
        self.failure = masked(reason)
        fill = f"sweep export {self.sweep} --to mlflow --uri {shlex.quote(masked(self.uri))}"
        fill += f" --results {shown(self.results)}"
        self.echo(
            f"tracking: MLflow at {masked(self.uri)} failed, so the sweep goes on untracked with its tables "
            f"whole ({self.failure}); fill the runs afterwards: {fill}"
        )
