"""SQL over the tables: DuckDB with the views `trials`, `epochs` and `layers`.

Each view is a table's files as `sweep/store/layout.py` reads them: the trials' own files, and the
compacted files except the rows of trials whose own file is newer, so each trial counts once.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import pandas as pd

from sweep.errors import ResultsError, first_line
from sweep.store.damage import damage, unreadable_files
from sweep.store.schema import TABLES
from sweep.store.tables import GONE, SWAP_RETRIES, ResultsStore

if TYPE_CHECKING:
    import duckdb


def query(store: ResultsStore, sql: str) -> pd.DataFrame:
    """Run DuckDB SQL with the views `trials`, `epochs` and `layers`."""
    for attempt in range(SWAP_RETRIES):  # a compaction swapped the files under the query: query the new set
        try:
            return _query(store, sql)
        except _Swapped:
            if attempt == SWAP_RETRIES - 1:
                raise ResultsError(f"query failed: the files of {store.root} kept changing") from None
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class _Swapped(Exception):
    """A file the query was to read went away: a compaction swapped the table's files."""


def _query(store: ResultsStore, sql: str) -> pd.DataFrame:
    import duckdb  # here, not at import: workers import the store package for where results live

    con = duckdb.connect()
    try:
        for name in TABLES:
            if re.search(rf"\b{name}\b", sql, re.IGNORECASE):  # only the tables it names: each is a listing
                register_view(con, store, name)
        relation = con.sql(sql)
        return relation.df() if relation is not None else pd.DataFrame()
    except FileNotFoundError:
        raise _Swapped from None
    except duckdb.Error as exc:
        if any(gone in str(exc) for gone in (*GONE, "Failed to open")):
            raise _Swapped from None
        for name in TABLES:  # a damaged part file reaches DuckDB as a reader's error: name the file instead
            if unreadable_files(store, name):
                raise damage(store, name, exc) from None
        message = first_line(exc)
        raise ResultsError(f"query failed: {message[:300]}") from None
    finally:
        con.close()


def register_view(con: duckdb.DuckDBPyConnection, store: ResultsStore, table: str) -> None:
    files = store.files(table)
    con.register(f"{table}__own", files.dataset(store.fs, files.live))
    parts = [f"SELECT * FROM {table}__own"]
    if files.compacted:
        con.register(f"{table}__compacted", files.dataset(store.fs, files.compacted))
        newer = ""
        if files.overridden:
            con.register(f"{table}__newer", files.overridden_table())
            newer = (
                f" c WHERE NOT EXISTS (SELECT 1 FROM {table}__newer n "
                "WHERE n.sweep = c.sweep AND n.trial_key = c.trial_key)"
            )
        parts.append(f"SELECT * FROM {table}__compacted{newer}")
    con.execute(f"CREATE VIEW {table} AS {' UNION ALL '.join(parts)}")
