"""Live tracking: a sweep's runs sent to MLflow, TensorBoard or W&B while it runs, as each epoch reaches the
tables.

The results writer hands each trial's rows to `LiveTracker.rows`, which only keeps them as the trial's
latest snapshot (one per trial: the pending work is bounded by the number of trials, and a newer snapshot
replaces an older one, since each holds every epoch so far). One thread of its own sends the snapshots
through a sink (`sinks.py`: `sweep export`'s own code), which logs only what the tracker lacks or writes
each run whole: a trial retried on another node, or a sweep resumed after Ctrl-C, continues its run with no
epoch logged twice, and runs are the same as an export after the sweep would make.

A tracker that is away, slow or refuses a value never costs a row or stops the sweep: the first failure is
one line naming the export that fills the gap afterwards, and that tracker sends nothing more (the others go
on). At the end the driver waits a bounded time for the last snapshots. An MLflow URI holds no credentials
(MLflow reads them from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN), so none reaches the
tables, the printed lines or Ray.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from sweep.errors import UserError, first_line
from sweep.store.location import shown
from sweep.trackers.mlflow_export import default_uri
from sweep.trackers.mlflow_writes import masked
from sweep.trackers.runs import TrialRun, trial_run
from sweep.trackers.sinks import Sink

FLUSH_EVERY_S = 5.0  # a round of requests every 5 s at most: epochs that arrive meanwhile go together
CLOSE_WAIT_S = 30.0  # at the end, how long the driver waits for a tracker to take the last epochs


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
    """Sends a sweep's runs to one tracker (`sink`) as epochs arrive (a `RowWatcher` of the engine)."""

    def __init__(self, sweep: str, sink: Sink, results: str, echo: Callable[[str], object] = print) -> None:
        self.sweep, self.sink, self.results, self.echo = sweep, sink, results, echo
        self.failure: str | None = None
        self.sent = 0  # snapshots the tracker took
        self._latest: dict[str, TrialRun] = {}
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None  # started by the first rows: a sweep refused sends none
        self._prepared = threading.Event()
        threading.Thread(target=self._prepare, name="sweep-tracking-load", daemon=True).start()

    def _prepare(self) -> None:
        """The tracker's library loads (and a new local store is made) while the sweep starts, before its
        trials compete for the CPU; what fails here, the first round reports."""
        try:
            with contextlib.suppress(Exception):
                self.sink.prepare()
        finally:
            self._prepared.set()

    def rows(self, trial: dict, epochs: Sequence[dict], layers: Sequence[dict]) -> None:
        if self.failure is not None:
            return
        try:
            run = trial_run(self.sweep, trial, epochs, layers)  # no Pareto tag: `sweep export` adds it
        except Exception as exc:  # a bug here must not cost the sweep a row
            self._fail(f"its runs could not be made ({first_line(exc)})")
            return
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._send, name="sweep-tracking", daemon=True)
                self._thread.start()
                self.echo(f"tracking sweep {self.sweep} live in {self.sink.label}")
            self._latest[run.trial_key] = run
            self._wake.notify()

    def close(self) -> None:
        self.close_by(time.monotonic() + CLOSE_WAIT_S)

    def stop(self) -> None:
        """The sweep has ended: the last round starts at once."""
        with self._wake:
            self._closing = True
            self._wake.notify()

    def close_by(self, deadline: float) -> None:
        """Wait until `deadline` (a `time.monotonic()`) for the last round."""
        if self._thread is None:
            return
        self.stop()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive() and self.failure is None:
            self._fail(f"it did not take the last epochs within {CLOSE_WAIT_S:.0f}s")

    def _send(self) -> None:
        """The tracker's thread: the latest snapshots, a round at a time; at the end one last round, which
        also ends the sweep's parent run where the tracker has one."""
        self._prepared.wait(CLOSE_WAIT_S)
        while True:
            with self._wake:
                while not self._latest and not self._closing:
                    self._wake.wait()
                batch, self._latest, last = list(self._latest.values()), {}, self._closing
            try:
                self.sink.send(batch, last)
            except Exception as exc:  # the tracker's, its HTTP client's, the OS's: the tables stay whole
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
        fill = f"sweep export {self.sweep} {self.sink.export_options()} --results {shown(self.results)}"
        self.echo(
            f"tracking: {self.sink.label} failed, so the sweep goes on untracked there with its tables "
            f"whole ({self.failure}); fill the runs afterwards: {fill}"
        )


class LiveTrackers:
    """Several trackers, each on its own thread, as one `RowWatcher`: one that fails leaves the others."""

    def __init__(self, trackers: Sequence[LiveTracker]) -> None:
        self.trackers = list(trackers)

    def rows(self, trial: dict, epochs: Sequence[dict], layers: Sequence[dict]) -> None:
        for tracker in self.trackers:
            tracker.rows(trial, epochs, layers)

    def close(self) -> None:
        for tracker in self.trackers:  # their last rounds go side by side
            tracker.stop()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for tracker in self.trackers:
            tracker.close_by(deadline)
