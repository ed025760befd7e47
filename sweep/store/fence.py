"""The fence around a driver's writes: rows are written only while the driver can prove it holds its sweep's
lease. The driver's lease (`sweep/store/lease.py`) is the fence; it is held for the block of
`holding(lease)`, in that thread's context, and `prove` consults it before a write (a thread that writes
for the driver, such as the rows' writer, enters `holding` with the fence it was handed). Outside any
such block (`sweep train`, tools that read) nothing is fenced."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

from sweep.errors import ResultsError


class Fenced(ResultsError):
    """The sweep stopped: its driver cannot prove its lease, or its store does not answer (the message is
    the whole line, with the command that continues the sweep)."""


class Fence(Protocol):
    def prove(self, what: str) -> None:
        """Raise `ResultsError` (one line) unless the lease is proven now."""

    def remaining(self) -> float:
        """Seconds for which the lease stays proven without another renewal."""

    def stop(self, error: ResultsError) -> None:
        """Stop the sweep because of `error` (a store that does not answer, a write refused)."""


_HELD: ContextVar[Fence | None] = ContextVar("sweep_fence", default=None)


@contextlib.contextmanager
def holding(fence: Fence | None) -> Iterator[None]:
    token = _HELD.set(fence)
    try:
        yield
    finally:
        _HELD.reset(token)


def held() -> Fence | None:
    """The fence of this context, if a driver holds one."""
    return _HELD.get()


def prove(what: str) -> None:
    """Before writing `what`: raise when this context's driver can no longer prove its lease."""
    fence = _HELD.get()
    if fence is not None:
        fence.prove(what)
