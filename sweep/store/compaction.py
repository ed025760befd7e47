"""Compaction: a sweep's per-trial files rewritten into a few large ones, swapped in at once.

For each table, the partition's rows as the project reads them (each trial once), sorted by trial, are
written into files of at most `FILE_ROWS` rows in row groups of `ROW_GROUP` rows (DuckDB's guidance: row
groups of 100k-1M rows, files from 100 MB up). They get a new generation's names; then the manifest,
`_compaction.json`, is replaced in one write, which is the switch (see `sweep/store/layout.py`); then the
files it replaced go. A partition's first compaction writes a manifest that names no file before anything
else, so that its new files, while they appear, are never taken for compacted files whose manifest is lost.
Until the switch a reader sees the old files, after it the new ones. A reader outside the project that
globs the folder (DuckDB, pandas, polars) sees both sets for the moment between the switch and the deletes,
and a trial that ran again after a compaction twice until the next one: read through `sweep query`, or glob
while no driver runs.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.store.layout import MANIFEST, begun_manifest, compacted_name
from sweep.store.schema import SCHEMA_VERSION, TABLES
from sweep.store.tables import ResultsStore

ROW_GROUP = 122_880  # DuckDB's own row group size
FILE_ROWS = 10 * ROW_GROUP * 10  # about 12 million rows per file


@dataclass(frozen=True)
class Compaction:
    table: str
    files_before: int
    files_after: int
    rows: int
    bytes_before: int
    bytes_after: int


def compact(store: ResultsStore, sweep: str) -> list[Compaction]:
    """Compact every table of one sweep (a table already in one file per `FILE_ROWS` is left alone)."""
    return [done for table in TABLES if (done := compact_table(store, sweep, table)) is not None]


def compact_table(store: ResultsStore, sweep: str, table: str) -> Compaction | None:
    files = store.files(table, sweep)  # a manifest that cannot be trusted stops it here: nothing is deleted
    before = files.live + files.compacted
    partition = f"{files.folder}/sweep={sweep}"
    on_disk = [info for info in listing(store, partition) if info.base_name.endswith(".parquet")]
    stale = [info.path for info in on_disk if info.path not in before]  # a dead compaction's leftovers
    if not files.live and len(files.compacted) <= 1 and not stale:
        return None
    data = store.read(table, sweep).drop(["sweep"])
    return switch(store, sweep, table, data, on_disk)


def switch(
    store: ResultsStore, sweep: str, table: str, data: pa.Table, on_disk: list[pafs.FileInfo]
) -> Compaction:
    """Write `data` as a new generation, switch the manifest to it, then delete the partition's other
    Parquet files (`on_disk`, listed before the write)."""
    partition = f"{store.base}/{table}/sweep={sweep}"
    data = data.sort_by([(c, "ascending") for c in _order(table)])
    generation = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    manifest_path = f"{table}/sweep={sweep}/{MANIFEST}"
    if not any(compacted_name(info.base_name) for info in on_disk):  # its first compaction: so that
        store.write_text(manifest_path, json.dumps(begun_manifest(generation)))  # a reader meanwhile knows
    names = []  # this generation's files, which appear before the switch, are not the table's yet
    for index, start in enumerate(range(0, max(1, data.num_rows), FILE_ROWS)):
        name = f"compact-{generation}-{index}.parquet"
        _write(store, f"{partition}/{name}", data.slice(start, FILE_ROWS), table)
        names.append(name)
    keys = sorted(set(data.column("trial_key").to_pylist()))
    sizes = {info.base_name: info.size for info in listing(store, partition) if info.base_name in names}
    manifest = {"generation": generation, "files": names, "keys": keys, "rows": data.num_rows, "sizes": sizes}
    store.write_text(manifest_path, json.dumps(manifest))  # the switch
    replaced = [info.path for info in on_disk if info.base_name not in names]
    for path in replaced:
        store.fs.delete_file(path)
    after = [info for info in listing(store, partition) if info.base_name in names]
    return Compaction(
        table,
        len(replaced),
        len(names),
        data.num_rows,
        sum(info.size or 0 for info in on_disk if info.path in replaced),
        sum(info.size or 0 for info in after),
    )


def _write(store: ResultsStore, path: str, data: pa.Table, table: str) -> None:
    metadata = {"sparse_sweep.schema_version": SCHEMA_VERSION, "sparse_sweep.table": table}
    data = data.replace_schema_metadata(metadata)
    if store.atomic_rename:
        temporary = f"{path.rpartition('/')[0]}/.{path.rpartition('/')[2]}.{uuid.uuid4().hex}.tmp"
        pq.write_table(data, temporary, filesystem=store.fs, row_group_size=ROW_GROUP)
        store.fs.move(temporary, path)
    else:  # an object store has no rename: a new key appears whole, once written
        pq.write_table(data, path, filesystem=store.fs, row_group_size=ROW_GROUP)


def listing(store: ResultsStore, partition: str) -> list[pafs.FileInfo]:
    return store.fs.get_file_info(pafs.FileSelector(partition, allow_not_found=True))


_ORDER = {
    "trials": ["trial_key"],
    "epochs": ["trial_key", "epoch"],
    "layers": ["trial_key", "epoch", "layer"],
}


def _order(table: str) -> list[str]:
    return _ORDER[table]


def compaction_line(sweep: str, done: list[Compaction]) -> str:
    """One line: how many files became how many, and the bytes."""
    if not done:
        return f"sweep {sweep}: its tables are compact already"
    before, after = sum(c.files_before for c in done), sum(c.files_after for c in done)
    size = sum(c.bytes_before for c in done) / 1e6, sum(c.bytes_after for c in done) / 1e6
    return f"compacted sweep {sweep}: {before} files into {after} ({size[0]:.1f} MB into {size[1]:.1f} MB)"
