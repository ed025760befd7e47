"""Drivers as a user starts them: `sweep` in a process group of its own (as from a terminal), and ways to
watch its tables while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sweep.store import ResultsStore

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def start(*args: object, env: dict | None = None) -> subprocess.Popen:
    """`sweep ARGS...` in the background, in a session of its own; stdout and stderr together."""
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *map(str, args)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env or ENV,
        text=True,
    )


def sweep(*args: object, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`sweep ARGS...` to its end."""
    command = [sys.executable, "-m", "sweep", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env or ENV, timeout=timeout)


def done_rows(results: Path | str, name: str) -> list[dict]:
    """The sweep's `done` trials rows so far (none while nothing is written); `results` a folder or URI."""
    if "://" not in str(results) and not (Path(results) / "trials").exists():
        return []
    try:
        return [t for t in ResultsStore(results).rows("trials", name) if t["status"] == "done"]
    except Exception:  # a file being replaced, or the partition taken away by the test
        return []


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 240, every: float = 0.2):
    """Poll until `condition()` is true; fail early when the driver ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver ended first (exit {proc.returncode}):\n{proc.stdout.read()}")
        time.sleep(every)
    raise AssertionError("timed out")


def with_trials_done(spec: Path, results: Path, name: str, trials: int, *options: object) -> subprocess.Popen:
    """`sweep run SPEC [OPTIONS...]` once `trials` of its trials are done."""
    proc = start("run", spec, "--results", results, *options)
    wait_for(lambda: len(done_rows(results, name)) >= trials, proc)
    return proc
