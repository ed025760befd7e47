"""`sweep bench`: one module per family of measured ratios, and the harness they share."""

from sweep.bench.harness import GOALS, write_json
from sweep.bench.run import run_bench

__all__ = ["GOALS", "run_bench", "write_json"]
