"""Where a live tracker sends a sweep's runs: MLflow, TensorBoard or W&B, each through `sweep export`'s own
code. A sink takes a round of snapshots (each trial's latest, every epoch so far) and says how the
export command that fills a gap reaches the same place."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Protocol

from sweep.trackers.mlflow_export import PROBE_ENV as FAIL_FAST  # a tracker down must not hold the end
from sweep.trackers.mlflow_writes import masked, settings
from sweep.trackers.runs import TrialRun


def _quiet(_: str) -> None:
    """A live round prints nothing: the sweep's own lines are the user's."""


class Sink(Protocol):
    label: str  # e.g. "MLflow at sqlite:///..."; never holds credentials

    def prepare(self) -> None:
        """Load the tracker's library (writing nothing), before the trials compete for the CPU."""

    def send(self, runs: list[TrialRun], ended: bool) -> None:
        """A round of snapshots; `ended`: the sweep's last. Raises what the tracker raised."""

    def export_options(self) -> str:
        """The `sweep export` options that write to the same place."""


class MlflowSink:
    def __init__(self, sweep: str, uri: str) -> None:
        self.sweep, self.uri, self.label = sweep, uri, f"MLflow at {masked(uri)}"

    def prepare(self) -> None:
        """A local store's tables are made here too (a new SQLite store takes seconds of CPU to make)."""
        from sweep.trackers.mlflow_export import open_store

        with settings(FAIL_FAST):
            open_store(self.uri)

    def send(self, runs: list[TrialRun], ended: bool) -> None:
        from sweep.trackers.mlflow_export import export_mlflow

        with settings(FAIL_FAST):
            export_mlflow(runs, self.sweep, self.uri, echo=_quiet, sweep_ended=ended)

    def export_options(self) -> str:
        return f"--to mlflow --uri {shlex.quote(masked(self.uri))}"


class TensorboardSink:
    """Each round writes its runs whole, with the HParams columns of every trial seen so far (`sweep export
    --to tensorboard` afterwards gives every run the columns of the whole sweep)."""

    def __init__(self, sweep: str, logdir: Path) -> None:
        self.sweep, self.logdir, self.label = sweep, logdir, f"TensorBoard in {logdir / sweep}"
        self._seen: dict[str, TrialRun] = {}

    def prepare(self) -> None:
        import tensorboard.plugins.hparams.api_pb2  # noqa: F401
        import torch.utils.tensorboard  # noqa: F401

    def send(self, runs: list[TrialRun], ended: bool) -> None:
        from sweep.trackers.tensorboard_export import export_tensorboard

        self._seen |= {run.trial_key: run for run in runs}
        columns = list(self._seen.values())
        export_tensorboard(runs, self.sweep, self.logdir, _quiet, whole_sweep=columns)

    def export_options(self) -> str:
        return f"--to tensorboard --uri {shlex.quote(str(self.logdir))}"


class WandbSink:
    """Offline, each round writes its runs whole in place of the earlier ones; online, it resumes each run
    and logs the epochs W&B lacks."""

    def __init__(self, sweep: str, folder: Path, online: bool) -> None:
        self.sweep, self.folder, self.online = sweep, folder, online
        self.label = "W&B online" if online else f"W&B offline in {folder / 'wandb'}"

    def prepare(self) -> None:
        import wandb  # noqa: F401

    def send(self, runs: list[TrialRun], ended: bool) -> None:
        from sweep.trackers.wandb_export import export_wandb

        export_wandb(runs, self.sweep, self.folder, self.online, _quiet)

    def export_options(self) -> str:
        return f"--to wandb --uri {shlex.quote(str(self.folder))}" + (" --online" if self.online else "")
