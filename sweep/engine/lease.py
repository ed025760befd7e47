"""One driver per sweep: the driver holds the sweep's lease (`sweep.store.lease`) while it runs, and renews
it in the background. A driver that finds its lease taken over stops what it does (`on_lost`: a sweep's
driver stops its Tune run, as Ctrl-C would). Imports no Ray: `sweep compact` holds the lease too."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from sweep.errors import ResultsError, UserError
from sweep.store import ResultsStore
from sweep.store.lease import RENEW_EVERY_S, LeaseFile, LeaseHolder


class DriverLease:
    """The lease this driver holds, and whether it was lost while the sweep ran."""

    def __init__(self, store: ResultsStore, sweep: str, on_lost: Callable[[], None]) -> None:
        self.file = LeaseFile(store.fs, store.base, sweep)
        self.on_lost = on_lost
        self.sweep = sweep
        self.previous: LeaseHolder | None = None  # the lease of a dead driver this one took over
        self.lost = False
        self._stop = threading.Event()

    def check(self) -> None:
        """Raise when another driver took the sweep over while this one ran."""
        if self.lost:
            raise UserError(
                f"sweep {self.sweep}: another driver took over its lease while this one ran, so this one "
                "stopped; see 'sweep status' for the driver that holds it"
            )

    def _keep(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                renewed = self.file.renew()
            except OSError:
                continue  # the store is away for a moment: the next renewal tries again
            if not renewed:
                self.lost = True
                self.on_lost()
                return


@contextlib.contextmanager
def driver_lease(
    store: ResultsStore, sweep: str, command: str, on_lost: Callable[[], None] = lambda: None
) -> Iterator[DriverLease]:
    """Hold the sweep's lease for the block (raises `SweepBusy` when a live driver holds it); a dead
    driver's lease is taken over (`DriverLease.previous`)."""
    lease = DriverLease(store, sweep, on_lost)
    try:
        lease.previous = lease.file.acquire(command)
    except OSError as exc:
        raise ResultsError(f"results {store.root}: cannot take the lease of sweep {sweep} ({exc})") from None
    keeper = threading.Thread(target=lease._keep, name="sweep-lease", daemon=True)
    keeper.start()
    try:
        yield lease
    finally:
        lease._stop.set()
        keeper.join(timeout=5)
        with contextlib.suppress(OSError):
            lease.file.release()
