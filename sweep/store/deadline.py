"""Deadlines on calls to a results store, and the settings that time a driver's hold on a sweep.

A store may stop answering without refusing: connections open, no reply comes (a server paused, a network
that drops packets). A request's own timeouts and retries then add up to minutes, so every call a driver
makes to its store also runs under a deadline: a call not done within it is abandoned (its thread is left
to end on its own) and raises `StoreHung`, one line that names the store. Settings, in seconds, from the
environment (short in tests):
- `SPARSE_SWEEP_STORE_DEADLINE_S` (60): the most one store call may take;
- `SPARSE_SWEEP_LEASE_TERM_S` (60): a lease whose version does not change for this long, as the observer's
  own clock measures it, is taken over; its holder renews it every sixth of it and stops writing once it
  cannot prove it within the term (`sweep/store/lease.py`).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from sweep.errors import ResultsError, UserError
from sweep.store.location import endpoint_shown, is_s3

DEADLINE_ENV = "SPARSE_SWEEP_STORE_DEADLINE_S"
TERM_ENV = "SPARSE_SWEEP_LEASE_TERM_S"
DEFAULT_S = 60.0
T = TypeVar("T")


class StoreHung(ResultsError):
    """A store call that did not end within its deadline."""


def store_deadline_s() -> float:
    return _setting(DEADLINE_ENV)


def lease_term_s() -> float:
    return _setting(TERM_ENV)


def within(seconds: float, store: str, doing: str, call: Callable[..., T], *args: object) -> T:
    """`call(*args)`, or `StoreHung` when it has not ended after `seconds`; its own errors pass through."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call(*args)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    context = contextvars.copy_context()  # the caller's fence goes with the call
    worker = threading.Thread(target=context.run, args=(run,), name="sweep-store-call", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds))
    if worker.is_alive():
        raise StoreHung(f"the results store {store} did not answer within {seconds:.0f}s ({doing})")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def store_answers(root: str, probe: Callable[[], object]) -> bool:
    """Whether the store at `root` answers `probe` (a cheap request) within the deadline: after a failed
    request, tells a store away from an error of another kind."""
    try:
        within(store_deadline_s(), store_named(root), "answering a probe", probe)
    except (OSError, ResultsError):
        return False
    return True


def store_named(root: str) -> str:
    """A store as messages name it: an S3 store with the endpoint its requests go to."""
    return f"{root} (endpoint {endpoint_shown()})" if is_s3(root) else root


def _setting(name: str) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return DEFAULT_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise UserError(f"{name}={text!r}: expected a number of seconds above 0 (default {DEFAULT_S:.0f})")
    return value
