"""The results tables: schema, atomic writes, queries and summaries of `trials` rows. Knows nothing of
training: imports pyarrow, DuckDB, pandas and `sweep.spec` only."""

from sweep.store.query import query
from sweep.store.schema import EPOCHS, LAYERS, SCHEMA_VERSION, TABLES, TRIALS
from sweep.store.tables import ResultsStore

__all__ = ["EPOCHS", "LAYERS", "SCHEMA_VERSION", "TABLES", "TRIALS", "ResultsStore", "query"]
