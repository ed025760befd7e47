"""What goes wrong around a sweep, for real: two drivers, a killed driver, a results folder that stops taking
writes mid-sweep, damaged part files, a changed spec under an old name. Nothing is lost or counted twice."""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.spec import load_spec
from sweep.store import ResultsStore, query

from . import drivers
from .conftest import write_spec

pytestmark = pytest.mark.slow

GRID = """
name: {name}
kind: sc_sdc
dataset: {{name: synthetic}}
train: {{optimizer: momentum, lr: 0.05, epochs: {epochs}, batch_size: 64}}
egf: {{samples: 128}}
grid: {{sparse_width: 48, ratios: [0.25, 0.5, 0.75], depths: [1, 2], seeds: [{seeds}]}}
"""


def whole(results: Path, name: str, spec: Path, epochs: int) -> list[dict]:
    """Exactly one `done` row per planned trial, and every epoch and layer row once."""
    store = ResultsStore(results)
    trials = store.rows("trials", name)
    assert sorted(t["trial_key"] for t in trials) == sorted(
        p.config.key for p in sc_sdc_trials(load_spec(spec))
    )
    assert all(t["status"] == "done" for t in trials), [t["error"] for t in trials]
    counts = query(
        store,
        f"""SELECT e.trial_key, count(*) AS n, count(DISTINCT e.epoch) AS d, max(e.epoch) AS last,
                   (SELECT count(*) FROM layers l WHERE l.trial_key = e.trial_key AND l.sweep = '{name}') AS l
            FROM epochs e WHERE e.sweep = '{name}' GROUP BY e.trial_key""",
    )
    assert len(counts) == len(trials)
    assert (counts["n"] == epochs + 1).all() and (counts["d"] == epochs + 1).all()
    depth = {t["trial_key"]: t["depth"] for t in trials}
    assert all(row.l == (epochs + 1) * (depth[row.trial_key] + 1) for row in counts.itertuples())
    return trials


def test_one_driver_per_sweep_and_a_killed_drivers_sweep_resumes(tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID.format(name="leased", epochs=12, seeds=0))
    results = tmp_path / "r"
    # a short term: the holder renews every 2 s, so a driver that finds the lease sees it renewed (and
    # refuses) long before the holder could finish the sweep, on however fast a machine
    env = {**drivers.ENV, "SPARSE_SWEEP_LEASE_TERM_S": "12"}
    first, second = (drivers.start("run", spec, "--results", results, env=env) for _ in range(2))
    loser = drivers.wait_for(lambda: next((p for p in (first, second) if p.poll() is not None), None))
    winner = second if loser is first else first
    refused = loser.stdout.read()
    assert loser.returncode == 2, refused
    assert "sweep leased is being run by another driver: 'sweep run' on" in refused
    assert f"(pid {winner.pid})" in refused and "Traceback" not in refused

    drivers.wait_for(lambda: (results / "_sweeps" / "leased.json").exists(), winner)
    busy = drivers.sweep("resume", "leased", "--results", results, env=env)
    assert busy.returncode == 2 and "is being run by another driver" in busy.stderr
    # killed as soon as two trials are in, with no slow command in between, so that the sweep is mid-way
    drivers.wait_for(lambda: len(drivers.done_rows(results, "leased")) >= 2, winner)
    os.killpg(winner.pid, signal.SIGKILL)
    winner.wait()
    before = {t["trial_key"]: t["started_at"] for t in drivers.done_rows(results, "leased")}
    assert 2 <= len(before) < 12

    again = drivers.sweep("run", spec, "--results", results)
    assert again.returncode == 2
    host = socket.gethostname()
    gone = f"was interrupted, and its driver is gone ('sweep run' on {host} (pid {winner.pid})"
    assert gone in again.stderr
    assert "no driver runs it now: continue it with 'sweep resume leased" in again.stderr
    resumed = drivers.sweep("resume", "leased", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for trial in whole(results, "leased", spec, 12):
        if trial["trial_key"] in before:  # finished trials were not trained again
            assert trial["started_at"] == before[trial["trial_key"]]
    assert not (results / "_sweeps" / "leased.lease").exists()  # released at the end


@pytest.fixture(scope="module")
def interrupted_by_a_failed_write(tmp_path_factory):
    """A 12-trial grid whose trials partition stops taking writes after 4 trials, then resumed."""
    root = tmp_path_factory.mktemp("failed-write")
    spec = write_spec(root / "g.yaml", GRID.format(name="writes", epochs=8, seeds="0"))
    results = root / "r"
    proc = drivers.start("run", spec, "--results", results)
    drivers.wait_for(lambda: len(drivers.done_rows(results, "writes")) >= 4, proc, every=0.05)
    partition = results / "trials" / "sweep=writes"
    moved = results / "trials" / ".sweep=writes.moved"  # hidden: no reader sees it meanwhile
    os.rename(partition, moved)
    partition.write_text("a file where the partition's folder was: every write there fails, even as root")
    output, _ = proc.communicate(timeout=300)
    trained = ResultsStore(results).keys("epochs", "writes")
    partition.unlink()
    os.rename(moved, partition)
    resumed = drivers.sweep("resume", "writes", "--results", results)
    return {
        "spec": spec,
        "results": results,
        "stopped": (proc.returncode, output),
        "trained": trained,
        "resumed": resumed,
    }


def test_a_failed_write_stops_the_sweep_at_once_in_one_line(interrupted_by_a_failed_write):
    code, output = interrupted_by_a_failed_write["stopped"]
    assert code == 2, output
    last = output.strip().splitlines()[-1]
    assert (
        last.startswith("sweep: error: sweep writes stopped: cannot write ")
        and "/trials/sweep=writes/" in last
    )
    assert "continue it with 'sweep resume writes --results" in last and "Traceback" not in output
    assert len(interrupted_by_a_failed_write["trained"]) <= 8  # 4 done, one failed write, 2 cut short: not 12


def test_resume_after_the_failed_write_loses_and_doubles_nothing(interrupted_by_a_failed_write):
    resumed = interrupted_by_a_failed_write["resumed"]
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    spec, results = interrupted_by_a_failed_write["spec"], interrupted_by_a_failed_write["results"]
    assert len(whole(results, "writes", spec, 8)) == 12
    assert ResultsStore(results).sweep_state("writes").stage == "done"


@pytest.fixture
def finished(interrupted_by_a_failed_write, tmp_path):
    """A copy of the finished grid's results (its Tune state and checkpoints included), to damage."""
    copy = tmp_path / "r"
    shutil.copytree(interrupted_by_a_failed_write["results"], copy)
    return interrupted_by_a_failed_write["spec"], copy


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_damaged_part_file_gets_one_line_and_changes_nothing(finished, damage, cli, tmp_path):
    spec, results = finished
    epochs_folder = results / "epochs" / "sweep=writes"
    victim = sorted(epochs_folder.glob("*.parquet"))[0]  # the compacted file: every trial's epochs
    if damage == "garbage":
        table, bad = "trials", results / "trials" / "sweep=writes" / "part-garbage.parquet"
        bad.write_bytes(b"not parquet at all")
    elif damage == "empty":
        table, bad = "layers", results / "layers" / "sweep=writes" / "part-empty.parquet"
        bad.write_bytes(b"")
    else:
        table, bad, original = "epochs", victim, pq.read_table(victim).to_pylist()
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    state = (results / "_sweeps" / "writes.json").read_bytes()
    commands = [
        ("status", "--results", results),
        ("status", "writes", "--results", results),
        ("query", f"SELECT count(*) FROM {table}", "--results", results),
        ("report", "writes", "--results", results, "--out", tmp_path / "report"),
        ("run", spec, "--results", results),
        ("resume", "writes", "--results", results),
    ]
    for command in commands:
        result = cli(*command)
        assert result.code == 2, (command, result.out, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, command
        assert f"{bad} is damaged (" in result.err and "sweep resume writes" in result.err, result.err
    assert (results / "_sweeps" / "writes.json").read_bytes() == state

    bad.rename(tmp_path / bad.name)  # what the message says to do
    if damage == "truncated":  # a compacted file: its manifest is rebuilt first, as the message says
        assert "sweep compact writes --repair" in result.err
        repaired = cli("compact", "writes", "--repair", "--results", results)
        assert repaired.code == 0 and "0 epochs" in repaired.out, repaired.out + repaired.err
    resumed = drivers.sweep("resume", "writes", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    whole(results, "writes", spec, 8)
    if damage == "truncated":  # the trials' rows came back from their checkpoints, as they were
        assert "12 of its trials lack rows: recording them again" in resumed.stdout
        again = {(r["trial_key"], r["epoch"]): r for r in ResultsStore(results).rows("epochs", "writes")}
        assert len(again) == len(original)
        for row in original:
            assert again[row["trial_key"], row["epoch"]]["test_acc"] == row["test_acc"]
            assert again[row["trial_key"], row["epoch"]]["egf"] == row["egf"]
    else:
        assert "sweep writes is already complete" in resumed.stdout


def test_a_changed_grid_under_an_old_name_is_refused_naming_what_changed(finished, cli):
    spec, results = finished
    changed = cli("run", spec, "--results", results, "--set", "train.epochs=3", "--set", "train.lr=0.1")
    assert changed.code == 2
    assert "sweep writes already ran in" in changed.err
    assert "train.epochs: 8 -> 3" in changed.err and "train.lr: 0.05 -> 0.1" in changed.err
    assert "grid.ratios" not in changed.err
    elsewhere = cli("run", spec, "--results", results, "--set", "ray.max_failures=5")
    assert elsewhere.code == 0, elsewhere.err  # where and how it runs may change: nothing to train
    assert "sweep writes is already complete" in elsewhere.out
