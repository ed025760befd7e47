"""`sweep report`: figures and `report.md` from a sweep's tables. Reads `sweep.store` only."""

from sweep.report.write import write_report

__all__ = ["write_report"]
