"""Which files hold a table's rows, and reading them so that every trial's rows count once.

While a sweep runs, each trial writes one file per table, `part-<trial_key>.parquet`. Compaction
(`sweep/store/compaction.py`) rewrites a partition into a few `compact-<generation>-<i>.parquet` files and
then switches the partition's manifest, `_compaction.json`, which names them and the trial keys they hold;
files of another generation are not part of the table (a compaction that died halfway leaves them, and the
next one deletes them). A trial's own file wins over its compacted rows: it ran again after the compaction.
So the project's readers see either the files before a compaction or the files after it, and each trial once:
a manifest that names a file the listing lacks was switched after the listing, and the reader lists again
(`StaleListing`); one that still does, or that does not parse, or compacted files with no manifest, is damage
(`DamagedManifest`), never "no compacted rows" (`sweep compact NAME --repair` rebuilds it). A partition's
first compaction writes a manifest that names no file (`begun_manifest`) before its files, so that a reader
meanwhile takes those for a generation not yet switched to, not for a lost manifest's. A file that the
listing shows too short to be Parquet, or a compacted file whose size is not the one its manifest recorded,
is damaged (`TableFiles.damaged`): the listing alone tells, with no request to read it.

A table's files come from one listing (one request on an object store), and each file is read as a fragment
whose size and partition the listing gave: no request per file to learn its size, and no schema inference.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from sweep.store.schema import TABLES, sweep_column

MANIFEST = "_compaction.json"
PARQUET_MIN = 12  # bytes: the magic number at each end and the footer's length
_FORMAT = pads.ParquetFileFormat()


class StaleListing(Exception):
    """A manifest names compacted files the listing lacks: a compaction switched after the listing."""

    def __init__(self, manifest: str, missing: list[str]) -> None:
        super().__init__(manifest)
        self.manifest, self.missing = manifest, missing


class DamagedManifest(Exception):
    """A partition's manifest cannot be trusted: what is wrong with it, and the sweep it belongs to."""

    def __init__(self, manifest: str, problem: str) -> None:
        super().__init__(f"{manifest} {problem}")
        self.manifest, self.problem = manifest, problem
        self.sweep = manifest.rpartition("/")[0].rpartition("/")[2].removeprefix("sweep=")


@dataclass
class TableFiles:
    """A table's files: the trials' own files, the compacted ones the manifests name, and per sweep the
    trial keys whose own file overrides their compacted rows."""

    table: str
    folder: str
    live: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
    overridden: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sizes: dict[str, int] = field(default_factory=dict)  # path -> bytes, from the listing
    damaged: list[str] = field(default_factory=list)  # files the listing shows damaged

    @property
    def schema(self) -> pa.Schema:
        return TABLES[self.table].append(sweep_column())

    def dataset(self, fs: pafs.FileSystem, files: list[str]) -> pads.Dataset:
        if not files:
            return pads.dataset(self.schema.empty_table())
        fragments = [
            _FORMAT.make_fragment(
                path,
                filesystem=fs,
                partition_expression=pc.field("sweep") == _sweep_of(path),
                file_size=self.sizes.get(path),
            )
            for path in files
        ]
        return pads.FileSystemDataset(fragments, self.schema, _FORMAT, fs)

    def overridden_table(self) -> pa.Table:
        pairs = [(sweep, key) for sweep, keys in self.overridden.items() for key in sorted(keys)]
        return pa.table(
            {"sweep": [s for s, _ in pairs], "trial_key": [k for _, k in pairs]},
            schema=pa.schema([sweep_column(), pa.field("trial_key", pa.string())]),
        )

    def read(self, fs: pafs.FileSystem, where: pc.Expression | None, columns: list[str] | None) -> pa.Table:
        """The rows, each trial's once: its own file's, else its compacted ones."""
        live = self.dataset(fs, self.live).to_table(filter=where, columns=columns)
        if not self.compacted:
            return live
        keep = where
        for sweep, keys in self.overridden.items():
            fresh = ~((pc.field("sweep") == sweep) & pc.field("trial_key").isin(sorted(keys)))
            keep = fresh if keep is None else keep & fresh
        compacted = self.dataset(fs, self.compacted).to_table(filter=keep, columns=columns)
        return pa.concat_tables([live, compacted]) if live.num_rows else compacted


def table_files(fs: pafs.FileSystem, base: str, table: str, sweep: str | None = None) -> TableFiles:
    """The files of a table (or of one sweep's partition), from one listing and the manifests."""
    folder = f"{base}/{table}"
    files = TableFiles(table, folder)
    root = f"{folder}/sweep={sweep}" if sweep is not None else folder
    compacted: dict[str, list[str]] = defaultdict(list)  # partition -> its compacted files on disk
    manifests: list[str] = []
    live_keys: dict[str, set[str]] = defaultdict(set)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type != pafs.FileType.File:
            continue
        files.sizes[info.path] = info.size
        partition, _, name = info.path.rpartition("/")
        if name.endswith(".parquet") and not name.startswith(".") and (info.size or 0) < PARQUET_MIN:
            files.damaged.append(info.path)
        if not partition.rpartition("/")[2].startswith("sweep="):
            continue
        if name.startswith("part-") and name.endswith(".parquet"):
            files.live.append(info.path)
            live_keys[partition].add(name.removeprefix("part-").removesuffix(".parquet"))
        elif compacted_name(name):
            compacted[partition].append(info.path)
        elif name == MANIFEST:
            manifests.append(partition)
    for partition in sorted(set(compacted) - set(manifests)):
        names = ", ".join(sorted(path.rpartition("/")[2] for path in compacted[partition]))
        problem = f"is missing, yet compacted files are there ({names})"
        raise DamagedManifest(f"{partition}/{MANIFEST}", problem)
    for partition in manifests:
        manifest = read_manifest(fs, partition)
        if manifest is None:  # gone since the listing: a compaction cannot remove one, so list again
            raise StaleListing(f"{partition}/{MANIFEST}", [])
        named = [f"{partition}/{name}" for name in manifest["files"]]
        missing = [path for path in named if path not in files.sizes]
        if missing:
            raise StaleListing(f"{partition}/{MANIFEST}", missing)
        recorded = manifest.get("sizes") or {}
        files.damaged += [
            f"{partition}/{n}" for n, size in recorded.items() if files.sizes[f"{partition}/{n}"] != size
        ]
        files.compacted += sorted(named)
        overridden = live_keys[partition] & set(manifest["keys"])
        if overridden:
            files.overridden[partition.rpartition("/")[2].removeprefix("sweep=")] |= overridden
    return files


def _sweep_of(path: str) -> str:
    return path.rpartition("/")[0].rpartition("/")[2].removeprefix("sweep=")


def read_manifest(fs: pafs.FileSystem, partition: str) -> dict | None:
    """A partition's manifest, checked; None where it has none. One that does not parse, or lacks what a
    manifest holds, is a `DamagedManifest`."""
    path = f"{partition}/{MANIFEST}"
    try:
        with fs.open_input_stream(path) as stream:
            text = stream.readall()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise DamagedManifest(path, f"is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise DamagedManifest(path, f"holds a {type(manifest).__name__}, not a manifest")
    for key in ("generation", "files", "keys"):
        if key not in manifest:
            raise DamagedManifest(path, f"lacks '{key}'")
    files, keys = manifest["files"], manifest["keys"]
    if manifest.get("begun") and files == [] and keys == []:
        return manifest  # a first compaction under way: no compacted rows yet
    if not isinstance(files, list) or not all(compacted_name(name) for name in files) or not files:
        expected = "expected a list of compact-*.parquet names"
        raise DamagedManifest(path, f"has 'files' {str(files)[:80]}: {expected}")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise DamagedManifest(path, f"has 'keys' {str(keys)[:80]}: expected a list of trial keys")
    return manifest


def begun_manifest(generation: str) -> dict:
    """The manifest a partition's first compaction writes before its files: it names none, so the partition's
    rows are its trials' own files until the switch."""
    return {"generation": "", "begun": generation, "files": [], "keys": []}


def compacted_name(name: object) -> bool:
    """Whether a file's name (not its path) is a compacted file's: `compact-*.parquet`."""
    if not isinstance(name, str) or "/" in name:
        return False
    return name.startswith("compact-") and name.endswith(".parquet")
