"""How the package speaks to its user: an `Echo` takes one line of output (the CLI passes `print`; a
caller of the API passes its own, a logger's method or a list's `append`), and durations read as people
read them: 42s, 3m05s, 2h10m."""

from __future__ import annotations

from collections.abc import Callable

Echo = Callable[[str], None]


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
