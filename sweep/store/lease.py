"""One driver per sweep: the driver holds the sweep's lease (its file: `store/lease_file.py`) while it runs,
renews it in the background, and fences itself: it writes rows only while it can prove its lease, that is
within the term since the start of its last successful renewal, less one renewal period (the time a write
started just before may take to land), as its own monotonic clock measures it. Another driver takes a lease
over only after seeing it unchanged for the whole term on its own clock, so by then this one has stopped
writing.

A driver that finds its lease taken over, that cannot renew it in time, or whose store does not answer
within the store deadline stops what it does (`on_lost`: a sweep's driver stops its Tune run, as Ctrl-C
would). Stopping saves Tune's state to the same store; if that store does not answer, the driver says why in
one line and exits once a deadline has passed, as a killed driver would, and `sweep resume` continues.
Imports no Ray: `sweep compact` holds the lease too."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from sweep.errors import ResultsError
from sweep.store import ResultsStore
from sweep.store.deadline import StoreHung, store_deadline_s, within
from sweep.store.fence import Fenced, holding
from sweep.store.lease_file import RENEWALS_PER_TERM, LeaseFile, LeaseHolder
from sweep.store.location import shown

EXIT_CODE = 2  # what the CLI returns for a one-line error


class DriverLease:
    """The lease this driver holds, whether it can still prove it, and why the sweep stopped if it did."""

    def __init__(self, store: ResultsStore, sweep: str, on_lost: Callable[[], None]) -> None:
        self.file = LeaseFile(store.fs, store.base, sweep)
        self.on_lost = on_lost
        self.sweep, self.results = sweep, store.root
        self.previous: LeaseHolder | None = None  # the lease of a dead driver this one took over
        self.proof = time.monotonic()  # when the last write of the lease that succeeded began
        self.error: ResultsError | None = None
        self.lost = False
        self._stop = threading.Event()
        self._stopping = threading.Lock()

    @property
    def every(self) -> float:
        return self.file.term / RENEWALS_PER_TERM

    def remaining(self) -> float:
        return self.proof + self.file.term - self.every - time.monotonic()

    def prove(self, what: str) -> None:
        """Raise (one line) unless this driver can prove its lease now; a write of `what` waits on it."""
        if self.error is None and self.remaining() <= 0:
            self.stop(self._unproven())
        if self.error is not None:
            raise self.error

    def check(self) -> None:
        """Raise when the lease was lost, or the sweep stopped because of its store, while this one ran."""
        if self.error is not None:
            raise self.error

    def stop(self, error: ResultsError) -> None:
        """Stop the sweep because of `error`: stop its run, and exit with `error` in one line if the run
        has not stopped within the store deadline (stopping writes to a store that may not answer)."""
        with self._stopping:
            if self.error is not None:
                return
            self.error = error
        self.on_lost()
        threading.Thread(target=self._exit_unless_stopped, name="sweep-lease-exit", daemon=True).start()

    def _exit_unless_stopped(self) -> None:
        if not self._stop.wait(store_deadline_s()):
            print(f"sweep: error: {self.error}", file=sys.stderr, flush=True)
            os._exit(EXIT_CODE)

    def _continue(self) -> str:
        return f"continue it with 'sweep resume {self.sweep} --results {shown(self.results)}'"

    def _unproven(self) -> ResultsError:
        return Fenced(
            f"sweep {self.sweep} stopped: this driver could not renew its lease within its term "
            f"({self.file.term:.0f}s), so it writes no more rows; {self._continue()}"
        )

    def _keep(self) -> None:
        while not self._stop.wait(max(0.0, min(self.every, self.remaining()))):
            limit = min(store_deadline_s(), max(0.0, self.remaining()))
            try:
                renewed = within(limit, self.file.store, f"renewing {self.file.path}", self.file.renew)
            except StoreHung as exc:
                self.stop(Fenced(f"sweep {self.sweep} stopped: {exc}; once it answers, {self._continue()}"))
                return
            except OSError:
                if self.remaining() <= 0:
                    self.stop(self._unproven())
                    return
                continue  # the store refused for a moment: the next renewal tries again
            if not renewed:
                self.lost = True
                self.stop(
                    Fenced(
                        f"sweep {self.sweep}: another driver took over its lease while this one ran, so this "
                        "one stopped; see 'sweep status' for the driver that holds it"
                    )
                )
                return
            self.proof = self.file.proof


@contextlib.contextmanager
def driver_lease(
    store: ResultsStore,
    sweep: str,
    command: str,
    on_lost: Callable[[], None] = lambda: None,
    echo: Callable[[str], None] | None = None,
) -> Iterator[DriverLease]:
    """Hold the sweep's lease for the block (raises `SweepBusy` when a live driver holds it), with the
    lease as the fence of the block's writes (`sweep/store/fence.py`); the lease of a driver gone or
    stalled is taken over (`DriverLease.previous`)."""
    lease = DriverLease(store, sweep, on_lost)

    def waiting(holder: LeaseHolder, term: float) -> None:
        if echo is not None:
            echo(
                f"sweep {sweep}: its lease is held by {holder.describe()}; watching whether it is renewed "
                f"(taken over if not within {term:.0f}s)"
            )

    try:
        lease.previous = lease.file.acquire(command, waiting)
        lease.proof = lease.file.proof
    except OSError as exc:
        raise ResultsError(f"results {store.root}: cannot take the lease of sweep {sweep} ({exc})") from None
    keeper = threading.Thread(target=lease._keep, name="sweep-lease", daemon=True)
    keeper.start()
    try:
        with holding(lease):
            yield lease
    finally:
        lease._stop.set()
        keeper.join(timeout=5)
        with contextlib.suppress(OSError, ResultsError):  # a lease left behind is taken over later
            lease.file.release()
