"""The results tables on disk or on a pyarrow.fs URI: atomic Parquet writes, reads. Knows nothing of training.

Layout (hive-partitioned, one partition per sweep, one file per trial and table):
    <root>/trials/sweep=<name>/part-<trial_key>.parquet      one row per trial
    <root>/epochs/sweep=<name>/part-<trial_key>.parquet      one row per trial and epoch
    <root>/layers/sweep=<name>/part-<trial_key>.parquet      one row per trial, epoch and weight layer
On a disk a file is written under a hidden temporary name and renamed into place; an object store has no
rename (a move is a copy, then a delete), but an object appears whole once its upload completes, so there
a file is written in place. Readers never see half a file, and a trial that runs again replaces its own
file instead of adding rows. `root` may be a local folder or a pyarrow.fs URI (s3://, gs://; see
`sweep/store/location.py` for an S3 store's settings).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.errors import ResultsError
from sweep.store import fence
from sweep.store.damage import damage
from sweep.store.journal import RemoteJournal, check_lines, working_copy
from sweep.store.layout import DamagedManifest, StaleListing, TableFiles, table_files
from sweep.store.location import open_filesystem, settle, shown
from sweep.store.schema import SCHEMA_VERSION, TABLES
from sweep.store.sweep_state import SweepState

SWAP_RETRIES = 6  # reads that meet a compaction's swap try again, a little later each time
GONE = ("No such file", "does not exist", "NoSuchKey", "NO_SUCH_KEY", "RESOURCE_NOT_FOUND")  # a file went


class ResultsStore:
    """Reads and writes the tables under one root folder or URI."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = settle(str(root))
        try:
            self.fs, self.base = open_filesystem(self.root)
        except (pa.ArrowInvalid, ValueError):
            self.fs, self.base = pafs.LocalFileSystem(), os.path.abspath(self.root)
        except OSError as exc:
            raise ResultsError(f"results {self.root}: cannot open the storage ({_reason(exc)})") from None
        self.atomic_rename = isinstance(self.fs, pafs.LocalFileSystem)  # object stores copy, then delete
        # a remote store's search journals, as this store saw them
        self._journals: dict[str, RemoteJournal] = {}

    # ----------------------------------------------------------------------------------------- writing
    def check_writable(self) -> None:
        """Fail early, before any training, when the results folder cannot take files."""
        probe = f"{self.base}/.write-check-{uuid.uuid4().hex}"
        try:
            self.fs.create_dir(self.base, recursive=True)
            with self.fs.open_output_stream(probe) as out:
                out.write(b"ok")
            self.fs.delete_file(probe)
        except OSError as exc:
            raise ResultsError(f"results folder {self.root} is not writable ({_reason(exc)})") from None

    def write(self, table: str, sweep: str, trial_key: str, rows: Sequence[dict]) -> None:
        """Write (or atomically replace) one trial's rows of one table."""
        schema = TABLES[table]
        data = pa.Table.from_pylist(list(rows), schema=schema).replace_schema_metadata(
            {"sparse_sweep.schema_version": SCHEMA_VERSION, "sparse_sweep.table": table}
        )
        folder = self._partition(table, sweep)
        final = f"{folder}/part-{trial_key}.parquet"
        fence.prove(final)  # a driver writes rows only while it can prove its lease
        try:
            if not self.atomic_rename:  # an object appears whole once its upload completes
                pq.write_table(data, final, filesystem=self.fs)
                return
            temporary = f"{folder}/.part-{trial_key}.{uuid.uuid4().hex}.tmp"
            self.fs.create_dir(folder, recursive=True)
            pq.write_table(data, temporary, filesystem=self.fs)
            self.fs.move(temporary, final)
        except OSError as exc:
            raise ResultsError(f"cannot write {final}: {_reason(exc)}") from None

    def forget_trial(self, sweep: str, trial_key: str) -> None:
        """Take a trial's rows out of every table: an empty file of its own overrides any it had, compacted
        or not (a longer run of the trial, under its new key, holds them all)."""
        for table in TABLES:
            self.write(table, sweep, trial_key, [])

    def write_text(self, relative: str, text: str) -> None:
        """Atomically write a small text file (sweep bookkeeping) under the root."""
        final = f"{self.base}/{relative}"
        folder, _, name = final.rpartition("/")
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp" if self.atomic_rename else final
        try:
            self.fs.create_dir(folder, recursive=True)
            with self.fs.open_output_stream(temporary) as out:
                out.write(text.encode())
            if temporary != final:
                self.fs.move(temporary, final)
        except OSError as exc:
            raise ResultsError(f"cannot write {final}: {_reason(exc)}") from None

    def read_text(self, relative: str) -> str | None:
        try:
            with self.fs.open_input_stream(f"{self.base}/{relative}") as stream:
                return stream.readall().decode()
        except (FileNotFoundError, IsADirectoryError):
            return None

    # ------------------------------------------------------------------------------ sweep bookkeeping
    def sweep_state(self, name: str) -> SweepState | None:
        """A sweep's resolved spec and stage, as `sweep run` left them (None if it never ran here)."""
        text = self.read_text(f"_sweeps/{name}.json")
        return SweepState.from_json(text) if text else None

    def save_sweep_state(self, state: SweepState) -> None:
        self.write_text(f"_sweeps/{state.name}.json", state.to_json())

    def sweep_states(self) -> list[SweepState]:
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/_sweeps", allow_not_found=True))
        names = sorted(i.base_name.removesuffix(".json") for i in infos if i.base_name.endswith(".json"))
        return [state for state in map(self.sweep_state, names) if state]

    # ----------------------------------------------------------------------------------------- reading
    def rows(self, table: str, sweep: str) -> list[dict]:
        """One sweep's rows as dicts, without the partition column (ready to write back)."""
        rows = self.read(table, sweep).to_pylist()
        for row in rows:
            row.pop("sweep", None)
        return rows

    def files(self, table: str, sweep: str | None = None) -> TableFiles:
        """The files that hold a table's rows (or one sweep's), its own and the compacted ones, from one
        listing that agrees with the manifests (listed again while a compaction switches). A manifest that
        cannot be trusted is an error that names it and the repair."""
        for attempt in range(SWAP_RETRIES):
            try:
                return table_files(self.fs, self.base, table, sweep)
            except StaleListing as stale:
                if attempt == SWAP_RETRIES - 1:
                    names = ", ".join(path.rpartition("/")[2] for path in stale.missing) or "itself"
                    problem = f"names {names}, which the folder does not hold"
                    raise self.damaged(DamagedManifest(stale.manifest, problem)) from None
                time.sleep(0.05 * (attempt + 1))
            except DamagedManifest as damaged:
                raise self.damaged(damaged) from None
        raise AssertionError("unreachable")

    def listed(self, table: str, sweep: str | None = None) -> TableFiles:
        """`files`, where a file the listing shows damaged is the one-line damage error (nothing is read)."""
        files = self.files(table, sweep)
        if files.damaged:
            raise damage(self, table, OSError(f"{files.damaged[0]} is damaged"))
        return files

    def damaged(self, damaged: DamagedManifest) -> ResultsError:
        """The one line for a manifest that cannot be trusted: what is wrong, and the repair."""
        return ResultsError(
            f"{damaged.manifest} {damaged.problem}; nothing was deleted: 'sweep compact {damaged.sweep} "
            f"--repair --results {shown(self.root)}' rebuilds it from the compacted files"
        )

    def read(self, table: str, sweep: str | None = None, columns: list[str] | None = None) -> pa.Table:
        """A table's rows (one sweep's, or all), every column or those named, each trial's once. A damaged
        part file gets one line that names it and what to do."""
        where = pads.field("sweep") == sweep if sweep is not None else None
        for attempt in range(SWAP_RETRIES):  # a compaction that swapped the files: read the new set
            try:
                return self.listed(table, sweep).read(self.fs, where, columns)
            except (pa.ArrowInvalid, OSError) as exc:
                if not _gone(exc):
                    raise damage(self, table, exc) from None
                if attempt == SWAP_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def check_readable(self, sweep: str) -> None:
        """Raise the one-line damage error if any table of the sweep cannot be read."""
        for table in TABLES:
            self.keys(table, sweep)

    def keys(self, table: str, sweep: str) -> set[str]:
        """The trial keys a sweep has rows for in a table."""
        return set(self.read(table, sweep, columns=["trial_key"]).column("trial_key").to_pylist())

    def study_journal(self, sweep: str) -> str:
        """The local file of a search's Optuna journal (Optuna's journal needs a local file): beside the
        sweep's state on a local disk. For a remote store it is a working copy in a folder named by the
        store, at the same path on every machine (Tune's saved searcher names it), brought up to the store's
        journal first (`sweep.store.journal`), so a resume on a machine that never ran the sweep continues
        its study. A damaged line is one error that names the journal and the line."""
        local = self._journal_copy(sweep)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        remote = self._remote_journal(sweep)
        if remote is not None:
            remote.fetch()
        if os.path.exists(local):
            named = f"{self.root}/_sweeps/{sweep}.optuna/ (this machine's copy {local})" if remote else local
            check_lines(local, named)
        return local

    def save_journal(self, sweep: str) -> None:
        """Send a remote store the lines of the sweep's Optuna journal it lacks."""
        remote = self._remote_journal(sweep)
        if remote is not None and os.path.exists(remote.local):
            remote.save()

    def discard_study(self, sweep: str) -> None:
        journal = self._journal_copy(sweep)
        if os.path.exists(journal):
            os.remove(journal)
        remote = self._remote_journal(sweep)
        if remote is not None:
            remote.discard()

    def _remote_journal(self, sweep: str) -> RemoteJournal | None:
        if isinstance(self.fs, pafs.LocalFileSystem):
            return None
        if sweep not in self._journals:
            self._journals[sweep] = RemoteJournal(
                self.fs, f"{self.base}/_sweeps/{sweep}", working_copy(self.root, sweep)
            )
        return self._journals[sweep]

    def _journal_copy(self, sweep: str) -> str:
        """The journal's local file: on a local disk the journal itself, else this machine's working copy."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return f"{self.base}/_sweeps/{sweep}.optuna.log"
        return working_copy(self.root, sweep)

    def sweeps(self) -> list[str]:
        folder = f"{self.base}/trials"
        if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(folder))
        names = [i.base_name.split("=", 1)[1] for i in infos if i.base_name.startswith("sweep=")]
        return sorted(names)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.base).type == pafs.FileType.Directory

    def _partition(self, table: str, sweep: str) -> str:
        return f"{self.base}/{table}/sweep={sweep}"


def _gone(exc: Exception) -> bool:
    """A file listed a moment ago is not there now: a compaction swapped the files under the reader."""
    return isinstance(exc, FileNotFoundError) or any(sign in str(exc) for sign in GONE)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc).splitlines()[0]
