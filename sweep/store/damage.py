"""Damaged part files: finding them, and the one line that names one and says what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sweep.errors import ResultsError, first_line
from sweep.store.layout import compacted_name
from sweep.store.location import shown

if TYPE_CHECKING:
    from sweep.store.tables import ResultsStore


def damage(store: ResultsStore, table: str, error: Exception) -> ResultsError:
    """The error for a table that cannot be read: its first damaged file, or the reader's own words."""
    for path, reason in unreadable_files(store, table):
        parts = [part.removeprefix("sweep=") for part in path.split("/") if part.startswith("sweep=")]
        sweep = parts[0] if parts else "NAME"
        again = rerun_command(store, sweep)
        then = f"{again} writes its trial's rows again"
        if compacted_name(path.rpartition("/")[2]):  # named by the manifest: it is rebuilt first
            then = (
                f"'sweep compact {sweep} --repair --results {shown(store.root)}', then {again} write its "
                "trials' rows again"
            )
        return ResultsError(
            f"{path} is damaged ({reason}); move it out of the results folder (or put back a good copy), "
            f"then {then}"
        )
    return ResultsError(f"cannot read table {table} in {store.root}: {first_line(error)}")


def rerun_command(store: ResultsStore, sweep: str) -> str:
    """The command, as printed, that writes a sweep's trials' rows again: `sweep resume` for a sweep that
    `sweep run` ran, `sweep train` on its spec for a trial that `sweep train` trained alone."""
    results = shown(store.root)
    if sweep != "NAME" and store.sweep_state(sweep) is None:
        return f"'sweep train SPEC --force --results {results}' (SPEC: the spec it was trained from)"
    return f"'sweep resume {sweep} --results {results}'"


def unreadable_files(store: ResultsStore, table: str) -> list[tuple[str, str]]:
    """The part files of a table whose Parquet footer cannot be read, with the reason."""
    files = store.files(table)
    bad = []
    for path in files.live + files.compacted:
        try:
            pq.read_metadata(path, filesystem=store.fs)
        except FileNotFoundError:
            continue  # gone since the listing (a compaction's swap): not damaged
        except (pa.ArrowInvalid, OSError) as exc:
            if "does not exist" not in str(exc):
                bad.append((path, first_line(exc)))
    return bad
