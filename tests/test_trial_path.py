"""The README's trial path, followed through one running trial: every Python process of the sweep (the `sweep`
command, the Ray workers) records each file of the package whose functions it runs, and each step the README
names must be among them, in the process the README says it runs in. The embedded Ray starts no worker
beyond the one the trial runs in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, write_spec

PACKAGE = ROOT / "sweep"
# The steps that run on a Ray worker, by the function that does the step's work; the rest run on the driver.
WORKER_STEPS = {"engine/worker.py": "run_planned_trial", "core/train.py": "train_trial"}

# Put on PYTHONPATH, Python runs it as each process starts: the `sweep` command and Ray's workers record each
# function of the package they call, as FILE:FUNCTION (the bodies of modules and classes, run on import, and
# comprehensions and lambdas are left out).
TRACER = """
import os, sys, threading

ROLE = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
if ROLE in ("sweep", "default_worker.py"):
    PACKAGE = os.environ["TRACE_PACKAGE"]
    seen = set()
    out = open(os.path.join(os.environ["TRACE_OUT"], f"{ROLE}-{os.getpid()}.txt"), "a", buffering=1)

    def trace(frame, event, arg):
        code = frame.f_code
        if code.co_filename.startswith(PACKAGE) and code.co_flags & 1 and not code.co_name.startswith("<"):
            called = f"{code.co_filename[len(PACKAGE):]}:{code.co_name}"
            if called not in seen:
                seen.add(called)
                out.write(called + "\\n")

    sys.settrace(trace)
    threading.settrace(trace)
"""


def trial_path() -> list[str]:
    """The files the README's trial path names, in order."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("One trial's path") :]
    section = section[: section.index("\n\n", section.index("\n1. "))]
    return list(dict.fromkeys(re.findall(r"^\d+\. `([a-z_/]+\.py)`", section, flags=re.MULTILINE)))


@pytest.mark.slow  # a sweep of its own, on an embedded Ray of its own: 25 s
def test_one_trial_takes_the_readme_s_path_from_yaml_to_parquet(tmp_path):
    path = trial_path()
    assert path[0] == "spec/load.py" and path[-1] == "store/tables.py"
    assert 1 < len(path) <= 8, path
    site, out = tmp_path / "site", tmp_path / "trace"
    site.mkdir(), out.mkdir()
    (site / "sitecustomize.py").write_text(TRACER)
    spec = write_spec(
        tmp_path / "one.yaml",
        "name: one\ndataset: {name: synthetic, subset: 300}\nmodel: {widths: [8]}\ntrain: {epochs: 1}\n"
        "egf: {samples: 32}\n",
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "TRACE_PACKAGE": f"{PACKAGE}{os.sep}",
        "TRACE_OUT": str(out),
    }
    command = [str(Path(sys.executable).parent / "sweep"), "run", str(spec), "--results", str(tmp_path / "r")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[  1/1] done" in result.stdout
    (driver,) = [_called(f) for f in out.glob("sweep-*.txt")]
    started = list(out.glob("default_worker.py-*.txt"))  # each Ray worker process the sweep started
    assert len(started) == 1, "the embedded Ray started workers that ran no trial"
    workers = _called(started[0])
    assert sorted(set(WORKER_STEPS) - set(path)) == [], "the README's path names where the trial trains"
    on_driver = {file for file, _ in driver}
    assert sorted(step for step in path if step not in WORKER_STEPS and step not in on_driver) == []
    trained = set(WORKER_STEPS.items())
    assert sorted(trained - workers) == [], "the trial did not train on a Ray worker"
    assert trained.isdisjoint(driver), "the trial trained in the driver"


def _called(record: Path) -> set[tuple[str, str]]:
    return {tuple(line.split(":")) for line in record.read_text().split()}
