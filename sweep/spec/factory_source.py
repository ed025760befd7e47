"""Which version of a model factory's code a trial ran: a hash of its module's source, in the trial key, so
an edited factory is never mistaken for the old one. Reads the file; imports only the module's parents."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys


def factory_source(path: str) -> str:
    """The first 16 hex digits of the SHA-256 of the module `package.module:function` names; "unknown"
    where the module cannot be found here (building the model then says why in one line)."""
    module = path.partition(":")[0]
    importable_here()
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return "unknown"
    origin = found.origin if found is not None else None
    if not origin or not os.path.isfile(origin):
        return "unknown"
    return _digest(origin, os.stat(origin).st_mtime_ns)


@functools.cache
def _digest(origin: str, _modified: int) -> str:
    with open(origin, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def importable_here() -> None:
    """The working directory on the import path, as `python -m` would have it: a factory module beside the
    spec imports from the `sweep` command too."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
