"""Ray's environment, set in one place before Ray is imported: no usage statistics, no token auth on a
local head, Tune with no output or result files of its own (progress and the Parquet tables are ours), and in
the `sweep` command no tracebacks of errors Tune has stopped awaiting.
A setting the user exported already is kept."""

from __future__ import annotations

import os

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
TUNE_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables of Tune's own; progress is ours
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the Parquet tables are the record, not result.json
}


# In the `sweep` command's own process only (a program that imports the package keeps Ray's reports): an
# error no one awaits any more (a trial's, in a call Tune drops when a sweep stops) is not dumped with its
# traceback, as the sweep has reported each trial's error in a line of its own already.
COMMAND_ENV = {"RAY_IGNORE_UNHANDLED_ERRORS": "1"}


def set_ray_environment(command: bool = False) -> None:
    """Every default above (`command`: the `sweep` command's as well), unless the environment sets it."""
    for key, value in {**RAY_ENV, **TUNE_ENV, **(COMMAND_ENV if command else {})}.items():
        os.environ.setdefault(key, value)
