"""`sweep export`: a sweep's runs from its tables into one tracker, and the line that says where they went."""

from __future__ import annotations

import shlex

from sweep.errors import UserError
from sweep.store import ResultsStore
from sweep.trackers.runs import sweep_runs


def export_sweep(store: ResultsStore, sweep: str, tracker: str, uri: str | None, online: bool = False) -> str:
    """Export every trial of `sweep` as a run of `tracker` (mlflow, tensorboard or wandb); the line to print.
    `online` is W&B's: its runs go to its server instead of offline files."""
    if online and tracker != "wandb":
        raise UserError(f"--online is for --to wandb (the {tracker} export writes to --uri)")
    runs = sweep_runs(store, sweep)
    if tracker == "mlflow":
        from sweep.trackers.mlflow_export import default_uri, export_mlflow

        return f"open them: {export_mlflow(runs, sweep, uri or default_uri(store.root), print)}"
    if tracker == "wandb":
        from sweep.trackers.wandb_export import default_folder, export_wandb

        folder = export_wandb(runs, sweep, uri or default_folder(store.root), online, print)
        return f"exported {len(runs)} trials of sweep {sweep} to W&B{' online' if online else ''} ({folder})"
    from sweep.trackers.tensorboard_export import default_logdir, export_tensorboard

    logdir = export_tensorboard(runs, sweep, uri or default_logdir(store.root), print)
    opening = f"tensorboard --logdir {shlex.quote(str(logdir))}"
    return f"exported {len(runs)} trials of sweep {sweep} to TensorBoard in {logdir}: {opening}"
