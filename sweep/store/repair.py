"""Repair: a partition whose manifest cannot be trusted, rebuilt from the compacted files themselves.

Every compacted file names its table and schema version in its Parquet metadata. The repair reads each file of
the partition that holds one of the table's versions (any that `SCHEMA_VERSION` reads: the columns a file
lacks read as nulls), takes each trial's rows once, from its own part file if it has one, else from the newest
generation of compacted files that holds it, and writes them as a new compaction with a good manifest
(`compaction.switch`). Only then do the files it read go. A file that is not one of the table's stops the
repair before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.errors import ResultsError
from sweep.store.compaction import listing, switch
from sweep.store.layout import MANIFEST
from sweep.store.schema import SCHEMA_VERSION, TABLES
from sweep.store.tables import ResultsStore

READS = {str(version) for version in range(1, int(SCHEMA_VERSION) + 1)}


@dataclass(frozen=True)
class Repair:
    table: str
    compacted_files: int
    part_files: int
    rows: int


def repair(store: ResultsStore, sweep: str) -> list[Repair]:
    """Rebuild every table's partition of `sweep` from its files, once every file has been checked."""
    listings = {table: _checked_listing(store, sweep, table) for table in TABLES}
    done = []
    for table, on_disk in listings.items():
        if on_disk:
            done.append(_repair_table(store, sweep, table, on_disk))
        elif _drop_manifest(store, f"{store.base}/{table}/sweep={sweep}"):
            done.append(Repair(table, 0, 0, 0))
    return done


def _drop_manifest(store: ResultsStore, partition: str) -> bool:
    """A manifest left in a partition that holds no Parquet file names nothing there is to read: removed."""
    path = f"{partition}/{MANIFEST}"
    if store.fs.get_file_info(path).type != pafs.FileType.File:
        return False
    store.fs.delete_file(path)
    return True


def _checked_listing(store: ResultsStore, sweep: str, table: str) -> list[pafs.FileInfo]:
    """The partition's Parquet files, each compacted one checked to be one of the table's."""
    on_disk = [
        info
        for info in listing(store, f"{store.base}/{table}/sweep={sweep}")
        if info.base_name.endswith(".parquet")
    ]
    for info in on_disk:
        if info.base_name.startswith("compact-"):
            _check(store, info.path, table)
    return on_disk


def _repair_table(store: ResultsStore, sweep: str, table: str, on_disk: list[pafs.FileInfo]) -> Repair:
    parts = [info.path for info in on_disk if info.base_name.startswith("part-")]
    compacted = sorted((info.path for info in on_disk if info.base_name.startswith("compact-")), reverse=True)
    own = _read(store, table, parts)
    taken = set(own.column("trial_key").to_pylist())
    pieces = [own]
    for path in compacted:  # newest generation first: the names begin with the generation's time
        rows = _read(store, table, [path])
        known = pa.array(sorted(taken), pa.string())
        rows = rows.filter(pc.invert(pc.is_in(rows.column("trial_key"), value_set=known)))
        pieces.append(rows)
        taken |= _generation_keys(store, table, compacted, path)
    data = pa.concat_tables(pieces)
    switch(store, sweep, table, data, on_disk)
    return Repair(table, len(compacted), len(parts), data.num_rows)


def _generation_keys(store: ResultsStore, table: str, compacted: list[str], path: str) -> set[str]:
    """The trial keys of the generation `path` belongs to once its last file is read (a generation's files
    are read together: one trial's rows may span two of them)."""
    generation = _generation(path)
    rest = [other for other in compacted if _generation(other) == generation]
    if path != rest[-1]:
        return set()
    return set(_read(store, table, rest).column("trial_key").to_pylist())


def _generation(path: str) -> str:
    return path.rpartition("/")[2].removeprefix("compact-").rpartition("-")[0]


def _check(store: ResultsStore, path: str, table: str) -> None:
    try:
        metadata = pq.read_schema(path, filesystem=store.fs).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise ResultsError(f"{path} is damaged ({reason}); move it out, then repair again") from None
    holds = metadata.get(b"sparse_sweep.table", b"").decode()
    version = metadata.get(b"sparse_sweep.schema_version", b"").decode()
    if holds != table or version not in READS:
        expected = f"a {table} file of schema version {' to '.join(sorted(READS)[:: len(READS) - 1 or 1])}"
        raise ResultsError(
            f"{path}: its metadata names table {holds or 'none'}, schema version {version or 'none'}; "
            f"{expected} was expected: move it out, then repair again"
        )


def _read(store: ResultsStore, table: str, paths: list[str]) -> pa.Table:
    schema = TABLES[table]
    if not paths:
        return schema.empty_table()
    dataset = pads.dataset(paths, schema=schema, filesystem=store.fs, format="parquet")
    return dataset.to_table()


def repair_line(sweep: str, done: list[Repair]) -> str:
    """One line: what the repair read and the rows it brought back."""
    if not done:
        return f"sweep {sweep}: no files to repair"
    read = sum(r.compacted_files for r in done), sum(r.part_files for r in done)
    rows = ", ".join(f"{r.rows} {r.table}" for r in done)
    return (
        f"repaired sweep {sweep}: read {read[0]} compacted and {read[1]} part files, rows now {rows}, "
        "each table in one new compaction with its manifest"
    )
