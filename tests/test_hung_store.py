"""A results store that stops answering mid-sweep (its S3 API server stopped with SIGSTOP, so connections
open but no reply comes): every store call has a deadline, the sweep stops with one line that names the
store and the command to continue, and `sweep resume` finishes it once the store answers again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sweep.store import ResultsStore, query

from . import drivers
from .conftest import tiny_grid, write_spec
from .s3server import AWS, BUCKET, S3Server

pytestmark = pytest.mark.slow
DEADLINE_S = 3


@pytest.fixture
def s3_process(monkeypatch) -> Iterator[tuple[S3Server, subprocess.Popen]]:
    """An S3 API server in a process of its own (so that it can be stopped), with one bucket."""
    server = S3Server()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(server.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        drivers.wait_for(lambda: _listening(server.port), timeout=30)
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name, raising=False)
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        server.client().create_bucket(Bucket=BUCKET)
        yield server, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=30)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_store_that_stops_answering_stops_the_sweep_in_one_line_and_resume_finishes_it(
    s3_process, tmp_path
):
    server, moto = s3_process
    text = tiny_grid("hung", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0, 1, 2]}")
    spec = write_spec(tmp_path / "g.yaml", text.replace("epochs: 1,", "epochs: 8,"))
    results = f"s3://{BUCKET}/r"
    env = {**os.environ, **AWS, **server.env(), "PYTHONUNBUFFERED": "1"}
    env["SPARSE_SWEEP_STORE_DEADLINE_S"] = str(DEADLINE_S)
    proc = drivers.start("run", spec, "--results", results, env=env)
    drivers.wait_for(lambda: len(drivers.done_rows(results, "hung")) >= 1, proc, timeout=120)
    os.kill(moto.pid, signal.SIGSTOP)
    stopped = time.time()
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"the driver still waits a minute after the store hung:\n{output}") from None
    finally:
        os.kill(moto.pid, signal.SIGCONT)
    waited = time.time() - stopped
    assert proc.returncode == 2, output
    assert "Traceback" not in output and "Error" not in output.replace("ResultsError", ""), output
    (line,) = [line for line in output.splitlines() if "did not answer" in line]
    assert f"{server.endpoint.removeprefix('http://')}" in line and f"within {DEADLINE_S}s" in line
    assert f"sweep resume hung --results {results}" in line
    assert waited < 30, waited

    resumed = drivers.sweep("resume", "hung", "--results", results, env=env, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    store = ResultsStore(results)
    rows = store.rows("trials", "hung")
    assert len(rows) == len({r["trial_key"] for r in rows}) == 6
    assert all(r["status"] == "done" for r in rows), [(r["status"], r["error"]) for r in rows]
    per_trial = query(store, "SELECT trial_key, count(*) AS n FROM epochs WHERE sweep = 'hung' GROUP BY 1")
    assert set(per_trial["n"]) == {9}  # epochs 0..8, none twice
