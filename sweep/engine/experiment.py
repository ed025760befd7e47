"""The Tune experiment a stage runs: the trainable and its resources, the run settings (quiet, retries from
the latest checkpoint, two checkpoints kept per trial), where Tune keeps its state, and fitting it.

A trial's checkpoints are kept few, the latest two, pruned by the driver as each new one arrives
(`CheckpointPruner`). Tune's own `CheckpointConfig(num_to_keep=...)` would also force a snapshot of the
whole experiment's state after every checkpoint of any trial (so that the state never names a deleted
checkpoint), which costs a sweep of thousands of trials more than its training. The trainable restores from
the newest checkpoint a trial has in its own folder (`worker.latest_state`), so this pruning needs no
snapshot."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Mapping
from typing import Any

import pyarrow.fs as pafs
from ray import tune
from ray.tune.trainable import wrap_function

from sweep.core.data import ArrayDataset
from sweep.engine.progress import ResourceWait
from sweep.engine.session import quiet_tune
from sweep.engine.worker import run_planned_trial, trial_dirname, trial_name, with_checkpoint_fallback
from sweep.plans.types import PLANNED
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.location import is_uri, settle, tune_location

KEEP = 2  # the newest, and the one before it (which a snapshot taken in between may name)

# What `tune.run` imports before its first trial whenever it is given callbacks (it counts them by class
# for its usage tags, whether or not usage stats are sent): its logger integrations, and with them MLflow and
# W&B where they are installed, 2 s of one core.
TUNE_FIRST_IMPORTS = (
    "ray.air.integrations.comet",
    "ray.air.integrations.mlflow",
    "ray.air.integrations.wandb",
    "ray.tune.logger.aim",
    "ray.tune.utils.callback",
)


def preload_tune() -> None:
    """Import what Tune's first run would, ahead of it (the driver does this while Ray starts, when it
    mostly waits), so that the first trials start sooner. A module that fails to import here fails again
    where Tune imports it, and says so there."""
    for name in TUNE_FIRST_IMPORTS:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


class CheckpointPruner(tune.Callback):
    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        fs, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
        folder = path.rpartition("/")[0]
        try:
            siblings = sorted(
                info.path
                for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
                if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
            )
            for old in siblings[:-KEEP]:
                if old != path:
                    fs.delete_dir(old)
        except OSError:
            pass  # pruning is housekeeping: the next checkpoint tries again


def make_trainable(spec: SweepSpec, data: Mapping[str, ArrayDataset], checkpoints: str) -> object:
    """The worker function with its data, its threads and where its trials' checkpoints are."""
    threads = max(1, int(spec.resources.cpu))
    function = tune.with_parameters(run_planned_trial, data=data, threads=threads, checkpoints=checkpoints)
    trainable = with_checkpoint_fallback(wrap_function(function, name="run_planned_trial"))
    return tune.with_resources(trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def grid_tuner(spec: SweepSpec, trainable: object, entries: list[dict], config: tune.RunConfig) -> tune.Tuner:
    """A Tune grid over planned entries (each trial once), run as `config` (`run_config`) says."""
    return tune.Tuner(
        trainable,
        param_space={PLANNED: tune.grid_search(entries)},
        run_config=config,
        tune_config=tune.TuneConfig(**tuner_settings(spec)),
    )


def run_config(spec: SweepSpec, store: ResultsStore, experiment: str, callbacks: list) -> tune.RunConfig:
    """Quiet, our callbacks, retries from the latest checkpoint, two checkpoints kept per trial, and a bounded
    wait for resources the cluster lacks."""
    storage_path, storage_filesystem = tune_location(tune_storage(spec, store))
    return tune.RunConfig(
        name=experiment,
        storage_path=storage_path,
        storage_filesystem=storage_filesystem,
        verbose=0,
        callbacks=[*callbacks, CheckpointPruner(), resource_wait(spec, experiment)],
        failure_config=tune.FailureConfig(max_failures=spec.ray.max_failures),
    )


def resource_wait(spec: SweepSpec, experiment: str) -> ResourceWait:
    request = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return ResourceWait(request, spec.resources.wait_s, experiment)


def tuner_settings(spec: SweepSpec) -> dict:
    return {
        "reuse_actors": True,
        "max_concurrent_trials": spec.ray.max_concurrent_trials,
        "trial_name_creator": trial_name,
        "trial_dirname_creator": trial_dirname,
    }


def fit(tuner: tune.Tuner, ended_before: frozenset[str] = frozenset()) -> tune.ResultGrid | None:
    """Run Tune quietly; its results when every trial ended, None when the run was interrupted.

    Tune returns normally after Ctrl-C (or `stop_tune_run`), having saved its state, and marks the trials it
    cut short as terminated; only their last result lacks `done`. So a trial that neither failed, nor
    reported `done`, nor had ended before a resume (`ended_before`, trial ids) means the sweep was
    interrupted (a search also checks that its study holds every proposal).
    """
    with quiet_tune():
        results = tuner.fit()
    ended = sum(1 for result in results if _ended(result, ended_before))
    return results if ended == len(results) else None


def tune_storage(spec: SweepSpec, store: ResultsStore) -> str:
    """Where Tune keeps the sweep's experiment state and its trials' checkpoints."""
    if spec.ray.storage:
        return settle(spec.ray.storage, "ray.storage")
    return f"{store.root.rstrip('/')}/_tune" if is_uri(store.root) else os.path.join(store.base, "_tune")


def _ended(result: tune.Result, ended_before: frozenset[str]) -> bool:
    metrics = result.metrics or {}
    return result.error is not None or bool(metrics.get("done")) or metrics.get("trial_id") in ended_before


def ended_trials(path: str) -> frozenset[str]:
    """The trials a saved experiment holds as ended (done or failed): a restore does not run them again.

    Their saved last results may lack `done` (Tune sets it on a result it has already saved)."""
    where, fs = tune_location(path)
    with quiet_tune():
        trials = tune.ExperimentAnalysis(where, storage_filesystem=fs).trials
    return frozenset(t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR"))
