"""SQL over the tables: DuckDB with the views `trials`, `epochs` and `layers`."""

from __future__ import annotations

import duckdb
import pandas as pd

from sweep.errors import ResultsError
from sweep.store.schema import TABLES
from sweep.store.tables import ResultsStore


def query(store: ResultsStore, sql: str) -> pd.DataFrame:
    """Run DuckDB SQL with the views `trials`, `epochs` and `layers`."""
    con = duckdb.connect()
    try:
        for name in TABLES:
            con.register(name, store.dataset(name))
        relation = con.sql(sql)
        return relation.df() if relation is not None else pd.DataFrame()
    except duckdb.Error as exc:
        for name in TABLES:  # a damaged part file reaches DuckDB as a reader's error: name the file instead
            if store.unreadable_files(name):
                raise store.damage(name, exc) from None
        message = str(exc).strip().splitlines()[0]
        raise ResultsError(f"query failed: {message[:300]}") from None
    finally:
        con.close()
