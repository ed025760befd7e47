"""A compaction's manifest that is damaged, incomplete or gone is an error that names it, never "no rows": no
command deletes a compacted file for it, and `sweep compact --repair` brings every row back. A reader whose
listing a compaction overtakes reads again, and sees every row once."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from sweep.store import SCHEMA_VERSION, TABLES, ResultsStore
from sweep.store import layout as layout_module
from sweep.store.compaction import compact

from .conftest import tiny_grid, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]  # a sweep, compacted, for the module

NAME = "kept"
MANIFEST = "_compaction.json"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shared_ray):
    """A finished, compacted sweep of 8 trials (run once; each test works on its own copy)."""
    from sweep.cli import main

    root = tmp_path_factory.mktemp("manifest")
    spec = write_spec(
        root / "g.yaml", tiny_grid(NAME, "{sparse_width: 16, ratios: [0.25, 0.5], seeds: [0, 1]}")
    )
    assert main(["run", str(spec), "--results", str(root / "r")]) == 0
    return root / "r"


@pytest.fixture
def results(finished, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(finished, copy)
    return copy


def counts(cli, results) -> dict[str, int]:
    counted = {}
    for table in TABLES:
        out = cli("query", f"SELECT count(*) AS n FROM {table}", "--results", results, "--format", "json")
        assert out.code == 0, out.err
        counted[table] = json.loads(out.out)[0]["n"]
    return counted


def compacted_files(results) -> list[str]:
    return sorted(str(p.relative_to(results)) for p in results.glob("*/sweep=*/compact-*.parquet"))


def manifest(results, table="epochs"):
    return results / table / f"sweep={NAME}" / MANIFEST


def assert_refused(cli, results, *problem: str) -> None:
    """Every reader and writer stops with one line naming the manifest; no compacted file goes."""
    files = compacted_files(results)
    for command in (
        ("query", "SELECT count(*) FROM epochs"),
        ("status", NAME),
        ("compact", NAME),
        ("resume", NAME),
        ("report", NAME, "--out", str(results.parent / "report")),
    ):
        out = cli(*command, "--results", results)
        assert out.code == 2, (command, out.out, out.err)
        assert f"sweep={NAME}/{MANIFEST}" in out.err and all(p in out.err for p in problem), (
            command,
            out.err,
        )
        assert f"'sweep compact {NAME} --repair --results" in out.err and "Traceback" not in out.err
        assert compacted_files(results) == files, command


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ('{"generation": "2026', "is not JSON"),
        ("{}", "lacks 'generation'"),
        ("[]", "holds a list, not a manifest"),
        ('{"generation": "g", "files": [], "keys": []}', "expected a list of compact-*.parquet names"),
    ],
)
def test_a_damaged_manifest_is_an_error_and_repair_brings_every_row_back(cli, results, damage, problem):
    before = counts(cli, results)
    manifest(results).write_text(damage)
    assert_refused(cli, results, problem)
    repaired = cli("compact", NAME, "--repair", "--results", results)
    assert repaired.code == 0, repaired.err
    assert f"repaired sweep {NAME}" in repaired.out
    assert counts(cli, results) == before
    assert json.loads(manifest(results).read_text())["files"][0].startswith("compact-")


def test_a_manifest_that_names_a_missing_file_is_an_error(cli, results):
    before = counts(cli, results)
    good = json.loads(manifest(results).read_text())
    manifest(results).write_text(json.dumps({**good, "files": [*good["files"], "compact-1-x-9.parquet"]}))
    assert_refused(cli, results, "names compact-1-x-9.parquet, which the folder does not hold")
    assert cli("compact", NAME, "--repair", "--results", results).code == 0
    assert counts(cli, results) == before


def test_a_lost_manifest_is_an_error_not_an_empty_table(cli, results):
    before = counts(cli, results)
    manifest(results).unlink()
    assert_refused(cli, results, "is missing, yet compacted files are there")
    assert cli("compact", NAME, "--repair", "--results", results).code == 0
    assert counts(cli, results) == before


@pytest.mark.parametrize("version", sorted({"1", "2", SCHEMA_VERSION}))
def test_repair_reads_every_schema_version(cli, results, version):
    """Compacted files of an older schema (fewer columns, their version in the metadata) come back too,
    each trial once even where two generations hold it."""
    before = counts(cli, results)
    third = ["generation", "superseded"]
    added = {
        "2": third,
        "1": ["node_id", "attempts", "method", "scope", "method_settings", "level", "mask_changed"],
    }
    added["1"] += third
    for table in TABLES:
        partition = results / table / f"sweep={NAME}"
        (current,) = partition.glob("compact-*.parquet")
        data = pq.read_table(current)
        older = [c for c in added.get(version, []) if c in data.column_names]
        data = data.drop(older).replace_schema_metadata(
            {"sparse_sweep.schema_version": version, "sparse_sweep.table": table}
        )
        pq.write_table(data, partition / f"compact-20990101000000-{version}0000000-0.parquet")  # the newest
        current.rename(
            partition / "compact-20200101000000-0ld0ld00-0.parquet"
        )  # an older copy of every trial
        (partition / MANIFEST).unlink()
    assert cli("compact", NAME, "--repair", "--results", results).code == 0
    assert counts(cli, results) == before


def test_repair_refuses_a_file_of_another_table(cli, results):
    partition = results / "epochs" / f"sweep={NAME}"
    (trials,) = (results / "trials" / f"sweep={NAME}").glob("compact-*.parquet")
    shutil.copy(trials, partition / "compact-20200101000000-0ther000-0.parquet")
    (partition / MANIFEST).unlink()
    files = compacted_files(results)
    out = cli("compact", NAME, "--repair", "--results", results)
    assert out.code == 2 and "its metadata names table trials" in out.err and "Traceback" not in out.err
    assert compacted_files(results) == files


@pytest.mark.parametrize("hook", ["before the manifest", "before the reads"])
def test_a_reader_overtaken_by_a_compaction_reads_again(cli, results, monkeypatch, hook):
    """The interleaving, forced: the reader lists the files, then a whole compaction runs (its switch and its
    deletes), then the reader reads the manifest or the rows. It still sees every row, once."""
    store = ResultsStore(results)
    before = counts(cli, results)
    for table in TABLES:  # a dead compaction's leftovers: the next compaction has work, and deletes them
        partition = results / table / f"sweep={NAME}"
        (current,) = partition.glob("compact-*.parquet")
        shutil.copy(current, partition / "compact-19990101000000-deadbeef-0.parquet")
    runs = []

    def overtake() -> None:
        if not runs:
            runs.append(True)
            compact(ResultsStore(results), NAME)

    if hook == "before the manifest":
        read_manifest = layout_module.read_manifest

        def late(fs, partition):
            overtake()
            return read_manifest(fs, partition)

        monkeypatch.setattr(layout_module, "read_manifest", late)
    else:
        files = ResultsStore.files

        def listed_then_overtaken(self, table, sweep=None):
            listed = files(self, table, sweep)
            overtake()
            return listed

        monkeypatch.setattr(ResultsStore, "files", listed_then_overtaken)
    assert counts(cli, results) == before
    assert runs  # the compaction did overtake the reader
    assert len(store.rows("epochs", NAME)) == before["epochs"]
