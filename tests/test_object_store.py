"""Results, Tune's state and checkpoints in an S3 bucket, against a real S3 API server on 127.0.0.1 (moto's
server mode): every command, the lease's conditional writes, compaction under a reader, the store's faults,
a search resumed on a machine that never ran it, and a lost node on a cluster whose only shared storage is
the bucket."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.store import ResultsStore, query
from sweep.store.compaction import compact
from sweep.store.lease_file import RENEWALS_PER_TERM, LeaseFile, SweepBusy

from . import drivers
from .clusters import lose, start_cluster
from .conftest import tiny_grid, write_spec
from .s3server import BUCKET, S3Server
from .s3server import s3 as s3  # the fixture

pytestmark = pytest.mark.slow
GRID = "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0, 1]}"
SECRET = "NotForAnyLog1234"


def env_of(server, **extra: str) -> dict[str, str]:
    return {**os.environ, **server.env(), "PYTHONUNBUFFERED": "1", **extra}


def run_driver(server, *args: object, timeout: float = 600, **extra: str):
    import subprocess
    import sys

    command = [sys.executable, "-m", "sweep", *map(str, args)]
    env = env_of(server, **extra)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def test_every_command_works_on_a_bucket_and_no_secret_is_printed_or_saved(s3, cli, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # this time the URI's query says where the store is
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.chdir(tmp_path)
    uri = f"s3://{BUCKET}/r?endpoint_override=127.0.0.1:{s3.port}&scheme=http&secret_key={SECRET}"
    spec = write_spec(tmp_path / "g.yaml", tiny_grid("on-s3", GRID))
    ran = cli("run", spec, "--results", uri, "--no-compact")
    assert ran.code == 0, ran.err
    shown = f"s3://{BUCKET}/r?endpoint_override=127.0.0.1:{s3.port}&scheme=http"
    assert f"--results '{shown}'" in ran.out  # the query command to run next reaches the store, quoted
    keys = s3.keys("r/")
    assert sum(1 for k in keys if k.startswith("r/trials/sweep=on-s3/part-")) == 4
    checkpoints = [k for k in keys if re.match(r"r/_tune/on-s3/trial_\w+/checkpoint_\d+/", k)]
    assert checkpoints  # Tune's state and the checkpoints are in the bucket, none on this disk
    assert not [p for p in tmp_path.rglob("checkpoint_*")] and not (tmp_path / "r").exists()
    assert not [k for k in keys if ".tmp" in k]  # parts are written in place: no rename on S3

    status = cli("status", "on-s3", "--results", uri)
    assert status.code == 0 and "4" in status.out
    before = cli("query", "SELECT count(*) AS n FROM epochs WHERE sweep = 'on-s3'", "--results", uri)
    assert before.code == 0 and " 8" in before.out  # 4 trials x epochs 0 and 1
    compacted = cli("compact", "on-s3", "--results", uri)
    assert compacted.code == 0 and "compacted sweep on-s3" in compacted.out
    after = cli("query", "SELECT count(*) AS n FROM epochs WHERE sweep = 'on-s3'", "--results", uri)
    assert after.out == before.out
    report = cli("report", "on-s3", "--results", uri, "--out", tmp_path / "report")
    assert report.code == 0, report.err
    one = write_spec(
        tmp_path / "one.yaml",
        "name: one-on-s3\ndataset: {name: synthetic, subset: 300}\ntrain: {epochs: 1}\negf: {samples: 64}\n",
    )
    trained = cli("train", one, "--results", uri)
    assert trained.code == 0, trained.err
    again = cli("run", spec, "--results", uri)
    assert again.code == 0 and "already complete" in again.out

    everything = ran.out + ran.err + status.out + compacted.out + report.out + trained.out + again.out
    assert SECRET not in everything
    for key in s3.keys(""):  # the sweep's state, Tune's state, the searcher: no credential anywhere
        assert SECRET.encode() not in s3.body(key), key


def test_of_two_drivers_started_together_on_a_bucket_exactly_one_runs(s3, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", tiny_grid("two-drivers", GRID))
    results = f"s3://{BUCKET}/r"
    # a short term: a loser that finds the lease sees it renewed within a second, not after the winner ended
    env = env_of(s3, SPARSE_SWEEP_LEASE_TERM_S="6")
    procs = [drivers.start("run", spec, "--results", results, env=env) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], outputs
    loser = outputs[[proc.returncode for proc in procs].index(2)]
    assert "is being run by another driver" in loser and "Traceback" not in loser
    rows = ResultsStore(results).rows("trials", "two-drivers")
    assert len(rows) == len({r["trial_key"] for r in rows}) == 4


def test_the_lease_on_s3_is_a_compare_and_swap_of_which_exactly_one_wins(s3):
    store = ResultsStore(f"s3://{BUCKET}/r")
    leases = [LeaseFile(store.fs, store.base, "race") for _ in range(8)]
    start, won, lost, ended = threading.Barrier(8), [], [], threading.Event()

    def take(lease: LeaseFile) -> None:
        start.wait()
        try:
            lease.acquire("run")
        except SweepBusy:
            lost.append(lease)
            return
        won.append(lease)
        while not ended.wait(lease.term / RENEWALS_PER_TERM):  # renewed as a driver renews it: a driver
            lease.renew()  # that reads it late sees it alive, and does not take it over a term later

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(won) + len(lost) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    ended.set()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7
    (holder,) = won
    assert holder.renew() and not any(lease.renew() for lease in lost)
    s3.client().put_object(Bucket=BUCKET, Key="r/_sweeps/race.lease", Body=b"{}")  # someone else wrote it
    assert not holder.renew()  # its ETag changed under it: the driver must stop


def test_a_reader_during_compaction_on_s3_sees_the_old_files_or_the_new_never_both(s3):
    store = ResultsStore(f"s3://{BUCKET}/r")
    for trial in range(40):
        rows = [{"trial_key": f"t{trial:03d}", "epoch": e, "test_acc": 0.5} for e in range(5)]
        store.write("epochs", "busy", f"t{trial:03d}", rows)
    seen, failed, stop = [], [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(ResultsStore(f"s3://{BUCKET}/r").read("epochs", "busy").num_rows)
            except Exception as exc:  # a read that met the swap and gave up
                failed.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(0.3)
        (done,) = [c for c in compact(store, "busy") if c.table == "epochs"]
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join()
    assert done.files_before == 40 and done.files_after == 1
    assert not failed and len(seen) > 2 and set(seen) == {200}  # every read saw each trial once


def test_a_store_that_is_missing_away_or_refuses_us_gets_one_line_before_any_trial(s3, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", tiny_grid("nowhere", GRID))
    missing = run_driver(s3, "run", spec, "--results", "s3://no-such-bucket/r")
    assert missing.returncode == 2 and "no-such-bucket" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    gone = run_driver(s3, "status", "--results", f"s3://{BUCKET}/r", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert gone.returncode == 2 and "Traceback" not in gone.stderr, gone.stderr
    assert f"s3://{BUCKET}/r" in gone.stderr and "127.0.0.1:9" in gone.stderr
    started = time.time()
    away = run_driver(s3, "run", spec, "--results", f"s3://{BUCKET}/r", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert away.returncode == 2 and "Traceback" not in away.stderr, away.stderr
    assert "not writable" in away.stderr and time.time() - started < 60
    assert "trial" not in away.stdout.lower()


def test_wrong_credentials_get_one_line(tmp_path):
    """A second server with moto's authentication on: it knows no keys, so every request is refused."""
    import subprocess
    import sys

    server = S3Server()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(server.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        drivers.wait_for(lambda: _listening(server.port), timeout=30)
        refused = run_driver(server, "status", "--results", f"s3://{BUCKET}/r")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert f"s3://{BUCKET}/r" in refused.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_store_away_mid_sweep_stops_it_in_one_line_and_resume_finishes_it(s3, tmp_path):
    text = tiny_grid("outage", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0, 1, 2]}")
    spec = write_spec(tmp_path / "g.yaml", text.replace("epochs: 1,", "epochs: 10,"))
    results = f"s3://{BUCKET}/r"
    proc = drivers.start("run", spec, "--results", results, env=env_of(s3))
    drivers.wait_for(lambda: len(drivers.done_rows(results, "outage")) >= 2, proc, timeout=300)
    s3.stop()
    away = time.time()
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, output
    assert time.time() - away < 120
    assert "Traceback" not in output and f"--results {results}" in output, output
    assert "Unhandled error" not in output, output  # no trace of a trial's error that Tune dropped
    s3.start()  # back, with its data

    resumed = run_driver(s3, "resume", "outage", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = ResultsStore(results).rows("trials", "outage")
    assert len(rows) == len({r["trial_key"] for r in rows}) == 6
    assert all(r["status"] == "done" for r in rows), [(r["status"], r["error"]) for r in rows]
    store = ResultsStore(results)
    per_trial = query(store, "SELECT trial_key, count(*) AS n FROM epochs WHERE sweep = 'outage' GROUP BY 1")
    assert set(per_trial["n"]) == {11}  # epochs 0..10, none twice


SEARCH = """
name: search-on-s3
kind: snas
dataset: {name: synthetic}
model: {widths: [32, 16]}
train: {optimizer: momentum, lr: 0.05, epochs: 16, batch_size: 64, checkpoint_every: 2}
egf: {samples: 128}
search: {num_samples: 5, sampler: tpe, density_levels: [0.1, 0.2, 0.5, 1.0], seed: 5}
ray: {max_concurrent_trials: 2}
"""


def test_a_search_resumes_from_the_bucket_on_a_machine_that_never_ran_it(s3, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", SEARCH)
    results = f"s3://{BUCKET}/r"
    proc = drivers.start("run", spec, "--results", results, env=env_of(s3))
    drivers.wait_for(lambda: len(drivers.done_rows(results, "search-on-s3")) >= 2, proc, timeout=300)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert bucket_journal(s3, "search-on-s3")
    shutil.rmtree(os.environ["SPARSE_SWEEP_JOURNALS"])  # this machine's copy of the study: gone

    resumed = run_driver(s3, "resume", "search-on-s3", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = ResultsStore(results).rows("trials", "search-on-s3")
    assert len(rows) == len({r["trial_key"] for r in rows}) and all(r["status"] == "done" for r in rows)
    local = ResultsStore(results).study_journal("search-on-s3")
    study = optuna.load_study(study_name="search-on-s3", storage=JournalStorage(JournalFileBackend(local)))
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len([t for t in complete if not t.user_attrs.get("abandoned")]) == 5
    with open(local, "rb") as handle:  # the bucket's copy is current
        assert bucket_journal(s3, "search-on-s3") == handle.read()


def bucket_journal(s3, sweep: str) -> bytes:
    """The journal the bucket holds: its newest generation's parts, in order."""
    keys = s3.keys(f"r/_sweeps/{sweep}.optuna/")
    newest = max((key.split("/")[3] for key in keys), default=None)
    return b"".join(s3.body(key) for key in sorted(keys) if key.split("/")[3] == newest)


LOST = """
name: lost-node-s3
dataset: {name: synthetic}
model: {widths: [256, 128]}
train: {optimizer: momentum, lr: 0.05, epochs: 30, batch_size: 32}
egf: {samples: 256}
ray: {max_concurrent_trials: 1}
"""


def test_a_lost_node_s_trial_continues_from_its_checkpoint_in_the_bucket(s3, tmp_path):
    """A multi-node Ray whose nodes share only the bucket: no `_tune` folder on any disk to fall back on."""
    built, temp = start_cluster()
    try:
        first = built.add_node(num_cpus=1, temp_dir=temp)
        spec = write_spec(tmp_path / "s.yaml", LOST)
        results = f"s3://{BUCKET}/r"
        proc = drivers.start("run", spec, "--results", results, "--address", built.address, env=env_of(s3))
        drivers.wait_for(lambda: _last_epoch(results) >= 5, proc, timeout=300, every=0.2)
        lose(first)  # before the spare joins: the trial cannot end on its first node meanwhile
        spare = built.add_node(num_cpus=1, temp_dir=temp)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        resumed = re.search(r"continues after epoch (\d+) on node (\w+)", output)
        assert resumed and int(resumed.group(1)) >= 4, output
        store = ResultsStore(results)
        (trial,) = store.rows("trials", "lost-node-s3")
        assert trial["status"] == "done" and trial["attempts"] == 2 and trial["node_id"] == spare.node_id
        epochs = query(store, "SELECT epoch FROM epochs ORDER BY epoch")
        assert list(epochs["epoch"]) == list(range(31))  # one row per epoch, none twice
        folder = f"r/_tune/lost-node-s3/trial_{trial['trial_key']}/"
        assert any(re.match(rf"{folder}checkpoint_\d+/", key) for key in s3.keys(folder))
        on_disk = [p for root in (tmp_path, temp) for p in Path(root).rglob("checkpoint_*")]
        assert not on_disk  # no node kept a checkpoint of its own
    finally:
        built.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def _last_epoch(results: str) -> int:
    try:
        epochs = ResultsStore(results).read("epochs", "lost-node-s3", columns=["epoch"]).column("epoch")
    except Exception:  # nothing written yet
        return -1
    return max(epochs.to_pylist(), default=-1)
