"""The lease against a real S3 API server (moto's server mode) and on a local disk: liveness judged by the
lease's version on the observer's own monotonic clock (never by comparing two hosts' clocks), a holder that
fences itself when it cannot prove its lease within its term, and conditional writes retried after their
reply was lost."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from sweep.store import ResultsStore
from sweep.store.deadline import DEADLINE_ENV, TERM_ENV
from sweep.store.lease_file import LeaseFile, SweepBusy

from . import drivers
from .conftest import tiny_grid, write_spec
from .s3proxy import S3Proxy
from .s3server import BUCKET
from .s3server import s3 as s3  # the fixture

HOUR = 3600.0


def test_a_retried_conditional_write_whose_reply_was_lost_is_its_own_success(s3, monkeypatch, cli, tmp_path):
    proxy = S3Proxy(s3.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    try:
        store = ResultsStore(f"s3://{BUCKET}/r")
        lease = LeaseFile(store.fs, store.base, "retried")
        proxy.drop_reply = re.compile(r"^PUT /sweeps/r/_sweeps/retried\.lease")
        assert lease.acquire("run") is None  # created; the retry of the create met its own object
        assert proxy.drop_reply is None  # the reply was indeed lost
        assert lease.read().holder == lease.me
        proxy.drop_reply = re.compile(r"^PUT /sweeps/r/_sweeps/retried\.lease")
        assert lease.renew()  # renewed; the retry's If-Match met its own new version
        assert proxy.drop_reply is None
        proxy.drop_reply = re.compile(r"^DELETE /sweeps/r/_sweeps/retried\.lease")
        lease.release()
        assert lease.read() is None

        store.write("trials", "compacted", "t1", [])  # a sweep for `sweep compact`, which holds the lease
        proxy.drop_reply = re.compile(r"^PUT /sweeps/r/_sweeps/compacted\.lease")
        done = cli("compact", "compacted", "--results", f"s3://{BUCKET}/r")
        assert done.code == 0 and "compacted sweep compacted" in done.out, done.err
        assert proxy.drop_reply is None
    finally:
        proxy.close()


@pytest.fixture(params=["local", "s3"])
def lease_store(request, tmp_path) -> ResultsStore:
    if request.param == "local":
        return ResultsStore(tmp_path / "r")
    request.getfixturevalue("s3")
    return ResultsStore(f"s3://{BUCKET}/r")


def test_a_holder_whose_clock_is_an_hour_behind_keeps_its_lease_while_it_renews(lease_store):
    holder = LeaseFile(lease_store.fs, lease_store.base, "skewed", wall=lambda: time.time() - HOUR, term=1.0)
    holder.acquire("run")
    renewing, stop = [], threading.Event()

    def renew() -> None:
        while not stop.wait(0.1):
            renewing.append(holder.renew())

    keeper = threading.Thread(target=renew)
    keeper.start()
    try:
        other = LeaseFile(lease_store.fs, lease_store.base, "skewed", term=1.0)
        with pytest.raises(SweepBusy, match="is being run by another driver"):
            other.acquire("resume")
    finally:
        stop.set()
        keeper.join()
    assert renewing and all(renewing) and holder.read().holder == holder.me


def test_a_holder_whose_clock_is_an_hour_ahead_is_taken_over_once_its_lease_stops_changing(lease_store):
    holder = LeaseFile(lease_store.fs, lease_store.base, "ahead", wall=lambda: time.time() + HOUR, term=1.0)
    holder.acquire("run")  # and never renewed again: a driver that stalled
    other = LeaseFile(lease_store.fs, lease_store.base, "ahead", term=1.0)
    told: list[float] = []
    started = time.monotonic()
    replaced = other.acquire("resume", lambda current, term: told.append(term))
    assert replaced is not None and replaced.holder == holder.me
    assert 1.0 <= time.monotonic() - started < 10 and told == [1.0]
    assert other.read().holder == other.me and not holder.renew()


@pytest.mark.slow
def test_a_driver_whose_renewals_stall_writes_no_row_once_another_could_take_over(s3, tmp_path):
    """Only the lease's requests stall (a proxy holds them); the rows' requests pass."""
    term = 4.0
    proxy = S3Proxy(s3.port)
    text = tiny_grid("stalled", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0, 1, 2]}")
    spec = write_spec(tmp_path / "g.yaml", text.replace("epochs: 1,", "epochs: 12,"))
    results = f"s3://{BUCKET}/r"
    env = {**os.environ, **s3.env(), "PYTHONUNBUFFERED": "1", TERM_ENV: str(term), DEADLINE_ENV: "3"}
    try:
        first = drivers.start(
            "run", spec, "--results", results, env={**env, "AWS_ENDPOINT_URL": proxy.endpoint}
        )
        drivers.wait_for(lambda: len(drivers.done_rows(results, "stalled")) >= 1, first, timeout=120)
        proxy.stall = re.compile(r"/_sweeps/stalled\.lease")
        stalled = time.time()
        output, _ = first.communicate(timeout=60)
    finally:
        proxy.stall = None
        proxy.close()
    assert first.returncode == 2, output
    assert "Traceback" not in output and output.count("sweep: error:") == 1, output
    assert f"'sweep resume stalled --results {results}'" in output
    rows_written = [
        at for at, line in proxy.passed if re.match(r"PUT /sweeps/r/(trials|epochs|layers)/", line)
    ]
    assert rows_written and max(rows_written) < stalled + term  # none once another driver could hold it

    resumed = drivers.sweep("resume", "stalled", "--results", results, env=env, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "took over the lease of a driver that is gone" in resumed.stdout  # the lease it left
    rows = ResultsStore(results).rows("trials", "stalled")
    assert len(rows) == len({r["trial_key"] for r in rows}) == 6 and all(r["status"] == "done" for r in rows)
