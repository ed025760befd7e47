"""Compaction: a sweep's per-trial files become a few, each trial's rows count once before, during and
after, and a trial that runs again after a compaction replaces its rows exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from sweep.store import SCHEMA_VERSION, TABLES, ResultsStore, query
from sweep.store import compaction as compaction_module
from sweep.store.compaction import compact

from .conftest import write_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray for the module's sweeps

GRID = """
name: packed
kind: sc_sdc
dataset: {name: synthetic}
train: {optimizer: momentum, lr: 0.05, epochs: 2, batch_size: 64}
egf: {samples: 128}
grid: {sparse_width: 32, ratios: [0.25, 0.5], depths: [1, 2], seeds: [0, 1]}
"""


def parquet_files(folder):
    return sorted(p.name for p in folder.glob("*.parquet"))


def snapshot(store: ResultsStore) -> dict:
    """Every table's rows, in one order, as text (lists included)."""
    order = {"trials": "trial_key", "epochs": "trial_key, epoch", "layers": "trial_key, epoch, layer"}
    return {
        table: query(store, f"SELECT * EXCLUDE (sweep) FROM {table} ORDER BY {order[table]}").to_json()
        for table in TABLES
    }


@pytest.fixture(scope="module")
def uncompacted(tmp_path_factory, shared_ray):
    from sweep.cli import main

    root = tmp_path_factory.mktemp("compaction")
    spec = write_spec(root / "g.yaml", GRID)
    assert main(["run", str(spec), "--results", str(root / "r"), "--no-compact"]) == 0
    return root / "r"


@pytest.mark.slow
def test_sweep_compact_makes_one_file_per_table_and_changes_no_row(uncompacted, cli, tmp_path):
    store = ResultsStore(uncompacted)
    partition = uncompacted / "epochs" / "sweep=packed"
    assert len(parquet_files(partition)) == 16  # one file per trial before
    before = snapshot(store)
    result = cli("compact", "packed", "--results", uncompacted)
    assert result.code == 0, result.err
    assert "compacted sweep packed: 48 files into 3" in result.out
    for table in TABLES:
        files = parquet_files(uncompacted / table / "sweep=packed")
        assert len(files) == 1 and files[0].startswith("compact-")
        metadata = pq.read_metadata(uncompacted / table / "sweep=packed" / files[0])
        version = metadata.schema.to_arrow_schema().metadata[b"sparse_sweep.schema_version"]
        assert version == SCHEMA_VERSION.encode()
        manifest = json.loads((uncompacted / table / "sweep=packed" / "_compaction.json").read_text())
        assert manifest["files"] == files and len(manifest["keys"]) == 16
    assert snapshot(store) == before
    again = cli("compact", "--results", uncompacted)
    assert again.code == 0 and "its tables are compact already" in again.out
    status = cli("status", "packed", "--results", uncompacted)
    assert status.code == 0 and " 16 " in status.out


@pytest.mark.slow
def test_a_trial_written_after_a_compaction_replaces_its_rows_once(uncompacted):
    store = ResultsStore(uncompacted)
    compact(store, "packed")
    rows = store.rows("epochs", "packed")
    key = rows[0]["trial_key"]
    mine = [{**row, "test_acc": 0.123} for row in rows if row["trial_key"] == key]
    store.write("epochs", "packed", key, mine)  # the trial ran again, after the compaction
    for read in (store.rows("epochs", "packed"), query(store, "SELECT * FROM epochs").to_dict("records")):
        assert len(read) == len(rows)
        assert {r["test_acc"] for r in read if r["trial_key"] == key} == {0.123}
    compact(store, "packed")  # and the next compaction keeps the new rows
    after = store.rows("epochs", "packed")
    assert len(after) == len(rows) and {r["test_acc"] for r in after if r["trial_key"] == key} == {0.123}
    assert len(parquet_files(uncompacted / "epochs" / "sweep=packed")) == 1


def test_a_dead_compactions_files_are_not_read_and_go_next_time(tmp_path):
    store = ResultsStore(tmp_path)
    for key in ("a", "b"):
        store.write("trials", "s", key, [{"trial_key": key, "status": "done"}])
    compact(store, "s")
    partition = tmp_path / "trials" / "sweep=s"
    leftover = partition / "compact-19990101000000-deadbeef-0.parquet"
    leftover.write_bytes((partition / parquet_files(partition)[0]).read_bytes())  # as if the swap never came
    assert sorted(r["trial_key"] for r in store.rows("trials", "s")) == ["a", "b"]
    assert query(store, "SELECT count(*) AS n FROM trials")["n"].item() == 2
    store.write("trials", "s", "c", [{"trial_key": "c", "status": "done"}])
    compact(store, "s")
    assert not leftover.exists() and len(parquet_files(partition)) == 1
    assert sorted(r["trial_key"] for r in store.rows("trials", "s")) == ["a", "b", "c"]


def test_a_reader_between_a_first_compaction_s_files_and_its_switch_sees_the_trials_own_rows(
    tmp_path, monkeypatch
):
    """The interleaving, forced: a partition's first compaction has written its file but not yet its manifest
    when a reader lists the partition. The reader reads the trials' own files, each once, and no damage."""
    store = ResultsStore(tmp_path)
    for key in ("a", "b", "c"):
        store.write("epochs", "s", key, [{"trial_key": key, "epoch": e} for e in range(2)])
    write, seen = compaction_module._write, []

    def then_read(store_, path, data, table):
        write(store_, path, data, table)
        seen.append(sorted(r["trial_key"] for r in ResultsStore(tmp_path).rows(table, "s")))

    monkeypatch.setattr(compaction_module, "_write", then_read)
    compact(store, "s")
    assert seen and all(keys == ["a", "a", "b", "b", "c", "c"] for keys in seen)
    assert len(store.rows("epochs", "s")) == 6 and not list((tmp_path / "epochs" / "sweep=s").glob("part-*"))


READER = """
import sys, time
from sweep.store import ResultsStore, query
store, seen = ResultsStore(sys.argv[1]), set()
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    rows = store.rows("epochs", "s")
    keys = [r["trial_key"] for r in rows]
    counted = query(store, "SELECT count(*) AS n, count(DISTINCT trial_key) AS k FROM epochs")
    seen.add((len(rows), len(set(keys)), int(counted["n"].item()), int(counted["k"].item())))
print(sorted(seen))
"""


def test_a_reader_during_compactions_sees_every_row_once(tmp_path):
    """A reader loops while the partition is compacted six times, each time after some trials ran again:
    every read sees all 40 trials' 200 rows, none twice, none missing."""
    store = ResultsStore(tmp_path)
    for i in range(40):
        store.write("epochs", "s", f"k{i:02d}", [{"trial_key": f"k{i:02d}", "epoch": e} for e in range(5)])
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path), "8"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(2)  # the reader is looping
    for round_ in range(6):
        for i in range(round_ % 5, 40, 5):  # some trials run again, then the partition is compacted
            key = f"k{i:02d}"
            store.write("epochs", "s", key, [{"trial_key": key, "epoch": e, "lr": round_} for e in range(5)])
        compact(store, "s")
        time.sleep(0.5)
    output, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0
    assert output.strip() == "[(200, 40, 200, 40)]"
