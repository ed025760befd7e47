"""The tables: documented columns and types in DuckDB and pandas, no duplicates, atomic files."""

from __future__ import annotations

import csv
import io
import json
import shlex
import signal
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sweep.store import SCHEMA_VERSION, TABLES, ResultsStore, query

from .conftest import tiny_grid, write_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray for the module's sweeps

TRIALS_DOCUMENTED = (
    "sweep trial_key kind status error role pair_id dataset family depth widths densities mask  "
    "activation batchnorm skip optimizer lr weight_decay epochs seed active_weights total_weights  "
    "total_params density test_acc test_loss val_acc best_val_acc egf1 egf2 gf1 gf2 egf1_mean  "
    "egf2_mean gf1_mean gf2_mean pareto wall_s device node started_at ended_at torch_version  "
    "ray_version sweep_version egf"
).split()
EPOCHS_DOCUMENTED = (
    "sweep trial_key epoch train_loss train_acc val_acc test_loss test_acc egf1 egf2 egf1_pw  "
    "egf2_pw gf1 gf2 lr seconds samples_per_s"
).split()
LAYERS_DOCUMENTED = (
    "sweep trial_key epoch layer kind shape density active_weights total_weights g_masked_l1  "
    "g_masked_l2 g_l2"
).split()

SPEC = """
name: tables
dataset: {name: synthetic}
model: {widths: [24, 12], densities: 0.4}
train: {epochs: 2, batch_size: 64}
egf: {samples: 128}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_ray):
    from sweep.cli import main

    root = tmp_path_factory.mktemp("results")
    spec = write_spec(root / "spec.yaml", SPEC)
    assert main(["train", str(spec), "--results", str(root / "r")]) == 0
    return spec, root / "r"


def test_tables_read_back_in_duckdb_with_documented_columns_and_types(trained):
    _, root = trained
    con = duckdb.connect()
    for table, documented in (
        ("trials", TRIALS_DOCUMENTED),
        ("epochs", EPOCHS_DOCUMENTED),
        ("layers", LAYERS_DOCUMENTED),
    ):
        rel = con.sql(f"SELECT * FROM read_parquet('{root}/{table}/*/*.parquet', hive_partitioning=true)")
        assert set(documented) <= set(rel.columns), set(documented) - set(rel.columns)
    described = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{root}/trials/*/*.parquet')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["test_acc"] == "DOUBLE" and types["active_weights"] == "BIGINT"
    assert types["widths"] == "BIGINT[]" and types["densities"] == "DOUBLE[]"
    assert types["batchnorm"] == "BOOLEAN" and types["started_at"] == "TIMESTAMP WITH TIME ZONE"
    rows = con.sql(f"SELECT count(*), min(epoch), max(epoch) FROM read_parquet('{root}/epochs/*/*.parquet')")
    assert rows.fetchall() == [(3, 0, 2)]
    layers = con.sql(f"SELECT count(*) FROM read_parquet('{root}/layers/*/*.parquet')").fetchall()
    assert layers == [(3 * 3,)]


def test_tables_read_back_in_pandas(trained):
    _, root = trained
    trials = pd.read_parquet(root / "trials")
    assert set(TRIALS_DOCUMENTED) <= set(trials.columns)
    assert list(trials["sweep"].astype(str)) == ["tables"]
    row = trials.iloc[0]
    assert row["status"] == "done" and list(row["widths"]) == [24, 12]
    assert row["active_weights"] == round(0.4 * 144 * 24) + round(0.4 * 24 * 12) + round(0.4 * 12 * 10)
    assert row["egf"] == row["egf2"]
    epochs = pd.read_parquet(root / "epochs")
    assert set(EPOCHS_DOCUMENTED) <= set(epochs.columns)
    assert pd.api.types.is_float_dtype(epochs["test_acc"])
    layers = pd.read_parquet(root / "layers")
    assert set(LAYERS_DOCUMENTED) <= set(layers.columns)
    egf2 = layers[layers["epoch"] == 2]["g_masked_l2"].mean()
    assert egf2 == pytest.approx(epochs.set_index("epoch").loc[2, "egf2"])


def test_schema_version_is_in_the_file_metadata(trained):
    _, root = trained
    [path] = (root / "trials").glob("sweep=tables/*.parquet")
    meta = pq.read_schema(path).metadata
    assert meta[b"sparse_sweep.schema_version"] == SCHEMA_VERSION.encode()


def test_rerunning_a_trial_adds_no_duplicate(trained, cli):
    spec, root = trained
    again = cli("train", spec, "--results", root)
    assert again.code == 0 and "already done" in again.out
    forced = cli("train", spec, "--results", root, "--force")
    assert forced.code == 0
    counts = query(ResultsStore(root), "SELECT count(*) AS n, count(DISTINCT trial_key) AS k FROM trials")
    assert counts.to_dict("records") == [{"n": 1, "k": 1}]
    epochs = query(ResultsStore(root), "SELECT count(*) AS n FROM epochs")
    assert epochs["n"].item() == 3


def test_failed_runs_never_touch_written_results(trained, cli, tmp_path):
    spec, root = trained
    before = {p: p.read_bytes() for p in root.rglob("*.parquet")}
    bad = write_spec(tmp_path / "bad.yaml", SPEC.replace("epochs: 2", "epochs: 0"))
    assert cli("train", bad, "--results", root).code == 2
    assert (
        cli("train", spec, "--set", "train.device=cuda", "--set", "train.seed=5", "--results", root).code != 0
    )
    after = {p: p.read_bytes() for p in root.rglob("*.parquet")}
    assert before == after


def test_results_folder_not_writable(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("train", write_spec(tmp_path / "s.yaml", SPEC), "--results", blocker / "results")
    assert result.code == 2
    assert "is not writable" in result.err and "Traceback" not in result.err


def test_query_cli_formats_and_errors(trained, cli):
    _, root = trained
    table = cli("query", "SELECT trial_key, status, test_acc, egf FROM trials", "--results", root)
    assert table.code == 0 and "done" in table.out
    csv = cli(
        "query", "SELECT epoch, test_acc FROM epochs ORDER BY epoch", "--results", root, "--format", "csv"
    )
    assert csv.out.splitlines()[0] == "epoch,test_acc" and len(csv.out.splitlines()) == 4
    js = cli("query", "SELECT layer, kind FROM layers WHERE epoch = 0", "--results", root, "--format", "json")
    assert pd.read_json(io.StringIO(js.out))["kind"].tolist() == ["linear"] * 3
    bad = cli("query", "SELECT nope FROM trials", "--results", root)
    assert bad.code == 2 and "query failed" in bad.err and "nope" in bad.err
    assert len(bad.err.strip().splitlines()) == 1
    missing = cli("query", "SELECT 1", "--results", root / "nowhere")
    assert missing.code == 2 and "no results there yet" in missing.err


def test_empty_tables_are_queryable(tmp_path):
    store = ResultsStore(tmp_path)
    store.write("trials", "s", "k1", [])
    for table in TABLES:
        assert query(store, f"SELECT count(*) AS n FROM {table}")["n"].item() == 0


WRITER = """
import sys
from sweep.store import ResultsStore

store = ResultsStore(sys.argv[1])
rows = [{"trial_key": "big", "epoch": i, "test_acc": 0.5, "lr": 0.1} for i in range(400_000)]
print("ready", flush=True)
while True:
    store.write("epochs", "s", "big", rows)
"""


def test_a_killed_writer_leaves_no_half_file(tmp_path):
    store = ResultsStore(tmp_path)
    store.write("epochs", "s", "big", [{"trial_key": "big", "epoch": 0}])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = list((tmp_path / "epochs").rglob("*.parquet"))
    assert [p.name for p in visible] == ["part-big.parquet"]
    assert pq.read_table(visible[0]).num_rows in (1, 400_000)  # the old file or the new one, whole
    assert len(store.read("epochs")) in (1, 400_000)


def test_results_under_a_filesystem_uri(cli, tmp_path):
    """`--results` also takes a pyarrow.fs URI (s3://, gs://); file:// exercises the same code path here."""
    uri = f"file://{tmp_path / 'remote'}"
    assert cli("train", write_spec(tmp_path / "s.yaml", SPEC), "--results", uri).code == 0
    assert (tmp_path / "remote" / "trials" / "sweep=tables").is_dir()
    result = cli("query", "SELECT status, epochs_done FROM trials", "--results", uri, "--format", "csv")
    assert result.code == 0 and result.out.splitlines()[1] == "done,2"


def test_csv_list_cells_read_back_as_lists(trained, cli):
    _, root = trained
    sql = "SELECT trial_key, widths, densities, {'a': 1, 'b': [0.5, 1.0]} AS nested FROM trials"
    result = cli("query", sql, "--results", root, "--format", "csv")
    assert result.code == 0, result.err
    (row,) = list(csv.DictReader(io.StringIO(result.out)))
    assert json.loads(row["widths"]) == [24, 12]
    assert json.loads(row["densities"]) == pytest.approx([0.4, 0.4, 0.4], abs=1e-2)
    assert json.loads(row["nested"]) == {"a": 1, "b": [0.5, 1.0]}
    frame = pd.read_csv(io.StringIO(result.out))
    assert json.loads(frame.loc[0, "densities"]) == pytest.approx([0.4, 0.4, 0.4], abs=1e-2)
    table = cli("query", "SELECT widths FROM trials", "--results", root)
    assert table.out.splitlines()[1].strip() == "[24, 12]"  # readable in a table too, never numpy's "[24 12]"


@pytest.mark.parametrize("command", ["resume", "report", "status"])
@pytest.mark.parametrize("name", ["../../elsewhere/x", "a/b", ".hidden", "-rf"])
def test_a_sweep_name_is_a_name_never_a_path(trained, cli, tmp_path, command, name):
    _, root = trained
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.json").write_text("{}")
    result = cli(command, "--results", root, "--", name)
    assert result.code == 2
    assert result.err.strip() == (
        f"sweep: error: sweep name: {name!r} is not allowed; a sweep name uses letters, digits, '.', '_' "
        "and '-' only, and starts with a letter or digit"
    )


def test_report_to_a_folder_that_cannot_be_written(trained, cli, tmp_path):
    _, root = trained
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("report", "tables", "--results", root, "--out", blocker / "report")
    assert result.code == 2
    assert result.err.strip().startswith(f"sweep: error: cannot write the report to {blocker / 'report'}: ")
    assert "give --out a folder you can write" in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    fine = cli("report", "tables", "--results", root, "--out", tmp_path / "ok")
    assert fine.code == 0 and (tmp_path / "ok" / "report.md").exists()


@pytest.mark.parametrize(
    "command",
    [
        "query 'SELECT range FROM range(200000)' --results {root} | head -1",
        "query 'SELECT range FROM range(200000)' --results {root} --format csv | head -1",
        "status --results {root} | true",
        "status tables --results {root} | true",
        "--help | true",
    ],
)
def test_a_reader_that_goes_away_ends_quietly(trained, command):
    _, root = trained
    quietly_into_a_pipe(command.format(root=shlex.quote(str(root))))


def quietly_into_a_pipe(command: str) -> subprocess.CompletedProcess:
    """Run `sweep COMMAND | READER` through bash; the pipe closes early, and sweep must say nothing of it."""
    line = f"{shlex.quote(sys.executable)} -m sweep {command}"
    result = subprocess.run(
        ["bash", "-c", f'{line}; echo "rc=${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "rc=0", result.stderr
    return result


@pytest.mark.slow
def test_a_sweep_whose_reader_goes_away_runs_to_its_end_quietly(tmp_path):
    spec = write_spec(tmp_path / "g.yaml", PIPED_GRID)
    result = quietly_into_a_pipe(f"run {spec} --results {tmp_path / 'r'} | head -1")
    assert result.stdout.startswith("sweep piped (sc_sdc) on an embedded local Ray")
    trials = ResultsStore(tmp_path / "r").rows("trials", "piped")
    assert len(trials) == 8 and all(t["status"] == "done" for t in trials)  # every trial, with no reader
    assert ResultsStore(tmp_path / "r").sweep_state("piped").stage == "done"


PIPED_GRID = tiny_grid("piped", "{sparse_width: 16, ratios: [0.5, 0.25], depths: [1], seeds: [0, 1]}")
