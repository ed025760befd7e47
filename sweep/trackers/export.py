"""`sweep export`: a sweep's runs from its tables into one tracker, and the line that says where they went."""

from __future__ import annotations

import shlex

from sweep.store import ResultsStore
from sweep.trackers.runs import sweep_runs


def export_sweep(store: ResultsStore, sweep: str, tracker: str, uri: str | None) -> str:
    """Export every trial of `sweep` as a run of `tracker` (mlflow or tensorboard); the line to print."""
    runs = sweep_runs(store, sweep)
    if tracker == "mlflow":
        from sweep.trackers.mlflow_export import default_uri, export_mlflow

        return f"open them: {export_mlflow(runs, sweep, uri or default_uri(store.root), print)}"
    from sweep.trackers.tensorboard_export import default_logdir, export_tensorboard

    logdir = export_tensorboard(runs, sweep, uri or default_logdir(store.root), print)
    opening = f"tensorboard --logdir {shlex.quote(str(logdir))}"
    return f"exported {len(runs)} trials of sweep {sweep} to TensorBoard in {logdir}: {opening}"
