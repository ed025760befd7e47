"""Sweep names: a name becomes a folder and file names in the results store, so it is a plain, short name."""

from __future__ import annotations

import re

from sweep.errors import SpecError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 100  # with the longest file name built on it (the state's temporary file), well inside 255 bytes


def check_sweep_name(name: str, where: str) -> str:
    """A sweep's name is a name, never a path: letters, digits, '.', '_' and '-', not starting with '.',
    and at most `MAX_NAME` characters."""
    if not _NAME.fullmatch(name):
        raise SpecError(
            f"{where}: {name!r} is not allowed; a sweep name uses letters, digits, '.', '_' and '-' only, "
            "and starts with a letter or digit"
        )
    if len(name) > MAX_NAME:
        raise SpecError(
            f"{where}: {name[:20]!r}... has {len(name)} characters; a sweep name has at most {MAX_NAME} "
            "characters"
        )
    return name
