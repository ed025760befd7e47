"""The user's factories (a model's, a data set's), named `package.module:function`: the callable itself, and
which version of its code a trial ran: a hash of its module's source, in the trial key, so an edited factory
is never mistaken for the old one (that reads the file and imports only the module's parents)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

from sweep.errors import SpecError, first_line


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


def factory_function(path: str | None, field: str = "model.factory") -> Callable[..., Any]:
    """The callable `package.module:function` names, imported here (so on every worker that calls it); a
    path that is not one, a module that does not import, or a missing function is one line naming `field`."""
    module_name, _, function_name = (path or "").partition(":")
    if not module_name or not function_name:
        raise SpecError(f"{field}: {path!r} is not 'package.module:function'")
    importable_here()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's code: any error it raises on import is theirs to see, in one line
        raise SpecError(
            f"{field}: cannot import {module_name!r} ({type(exc).__name__}: {first_line(exc)}); it "
            "must be importable on every worker (in the job's working directory or a package installed there)"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SpecError(f"{field}: module {module_name!r} has no function {function_name!r}")
    return function
