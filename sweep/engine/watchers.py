"""Who else hears of a sweep's rows as they are written: a live tracker, which the caller of `run_sweep` or
`resume_sweep` brings (the engine knows nothing of trackers). Tune rebuilds the results callback when a sweep
resumes, so the callback finds its sweep's watcher here, by the sweep's name, in this driver process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol


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
