"""What runs on a Ray worker: the Tune function trainable around the core trainer.

Every `train.checkpoint_every` epochs the trial hands Tune a checkpoint with its report (`tune.report(...,
checkpoint=...)`): the trial's state (`sweep.core.checkpoint`), when it started, and its last report. Tune
keeps the latest one where the sweep's Tune state lives, so a trial whose node is lost continues on another
node from there (`tune.get_checkpoint()`), and its rows come out as if it had never stopped.

Kept apart from the driver's modules so that a worker imports only torch, Ray Tune and the core (no Optuna,
no DuckDB, no pandas): a new worker is ready sooner.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import pyarrow.fs as pafs
import ray
import torch
from ray import tune

from sweep.core.checkpoint import load_state, save_state
from sweep.core.data import ArrayDataset, DeviceDataset, fits, to_device
from sweep.core.facts import TrialFacts, resolve_device
from sweep.core.numerics import flush_subnormals
from sweep.core.train import EpochReport, train_trial
from sweep.plans.types import PLANNED
from sweep.spec import DatasetSpec, TrialConfig, parse_trial
from sweep.spec.factory_source import factory_source
from sweep.store.location import open_filesystem

# The Tune config key of a proposal whose configuration already finished: its result, reported again.
REPLAY = "sweep_replay"


def run_planned_trial(config: dict, data: Mapping[str, ArrayDataset], threads: int, checkpoints: str) -> None:
    """Tune function trainable: the core trainer, reporting every epoch to the driver. `checkpoints` is the
    folder (a path or a `pyarrow.fs` URI) of the stage's trial folders, where each trial finds its own."""
    if config.get(REPLAY) is not None:  # hand the searcher the result it already has; train nothing
        tune.report({**config[REPLAY], "replayed": True})
        return
    trial = parse_trial(config[PLANNED]["config"])
    flush_subnormals()  # before any torch thread starts: each thread inherits the flag from its creator
    torch.set_num_threads(threads)
    state, continued = latest_state(checkpoints, trial.key), None
    if state is None:
        state = _continued_state(config[PLANNED]["meta"], checkpoints)
        continued = config[PLANNED]["meta"]["continues"] if state is not None else None
    if state is not None and state["epoch"] >= trial.train.epochs:
        # It had finished, but its rows did not all land: report its whole history again, train nothing.
        tune.report(
            {**state["last_report"], "history": state["history"][:-1], "resumed_from": state["epoch"]}
        )
        return
    reporter = _Reporter(trial, state, continued)
    key = dataset_key(trial.dataset)
    arrays = data[key]  # larger than the memory budget: the trainer streams it (`sweep.core.streaming`)
    held = on_device(key, arrays, resolve_device(trial.train.device)) if fits(arrays) else arrays
    train_trial(trial, data=held, on_epoch=reporter.on_epoch, resume=state)


class _Reporter:
    """Turns the trainer's epoch reports into Tune reports, with a checkpoint every `checkpoint_every`."""

    def __init__(self, trial: TrialConfig, state: dict | None, continued: str | None = None) -> None:
        self.trial, self.continued = trial, continued
        self.started = state["trial_started"] if state else time.time()
        self.resumed_at, self.elapsed_before = time.time(), state.get("elapsed_s", 0.0) if state else 0.0
        self.resumed_from = state["epoch"] if state else None
        self.history: list[dict] = list(state["history"]) if state else []  # every report so far
        self.unsent = len(self.history)  # the restored history goes to the driver with the first report
        self.node_id = ray.get_runtime_context().get_node_id()

    def on_epoch(self, report: EpochReport, facts: TrialFacts) -> None:
        result = {
            **report.metrics,
            "layers": report.layers,
            "facts": dataclasses.asdict(facts),
            "diverged": report.diverged,
            "active_weights": facts.active_weights,
            "epochs_total": facts.epochs_total,
            "trial_key": self.trial.key,
            "trial_started": self.started,
            "elapsed_s": self.elapsed_before + time.time() - self.resumed_at,  # training, not waiting
            "node_id": self.node_id,
            "resumed_from": self.resumed_from,
            "continued_from": self.continued,  # the shorter trial a longer run continues, if it did
        }
        last = dict(result)
        if self.unsent:
            result["history"], self.unsent = self.history[: self.unsent], 0
        self.history.append({**report.metrics, "layers": report.layers})
        if not self._keeps(report):
            tune.report(result)
            return
        state = {
            **report.capture(),
            "trial_started": self.started,
            "elapsed_s": result["elapsed_s"],
            "history": self.history,
            "last_report": last,
        }
        with tempfile.TemporaryDirectory(prefix="sweep-checkpoint-") as folder:
            save_state(state, folder)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))

    def _keeps(self, report: EpochReport) -> bool:
        """Checkpoint after every `checkpoint_every` epochs and after the last; never the untrained net."""
        every = self.trial.train.checkpoint_every
        if not every or report.epoch == 0 or report.diverged:
            return False
        return report.epoch % every == 0 or report.epoch == self.trial.train.epochs


def latest_state(checkpoints: str, key: str) -> dict | None:
    """The state in the newest checkpoint of trial `key`, whichever run of the sweep wrote it, or None.

    A trial's checkpoints live in `<checkpoints>/trial_<key>` (see `trial_dirname`), so a trial that starts
    again (a lost node, a resumed sweep, a row recorded again) finds its own newest checkpoint, even when the
    Tune state a resume reads was saved before it: Tune snapshots its state every few seconds, not after
    every checkpoint, and a trial keeps only its latest two (`engine/experiment.py`)."""
    fs, base = open_filesystem(checkpoints)
    folder = f"{base.rstrip('/')}/trial_{key}"
    saved = [
        info.path
        for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
    ]
    for path in sorted(saved, reverse=True):  # the newest first; one pruned right now is skipped
        try:
            with tune.Checkpoint(path, filesystem=fs).as_directory() as local:
                return load_state(local)
        except OSError:
            continue
    return None


def _continued_state(meta: Mapping[str, Any], checkpoints: str) -> dict | None:
    """For a trial that a longer run continues: the shorter trial's last state, from the experiments of the
    sweep that may hold it (siblings of this stage's folder)."""
    if not meta.get("continues"):
        return None
    parent = checkpoints.rstrip("/").rpartition("/")[0]
    for experiment in meta.get("continues_in") or ():
        state = latest_state(f"{parent}/{experiment}", meta["continues"])
        if state is not None:
            return state
    return None


def _exists(checkpoint: tune.Checkpoint) -> bool:
    return checkpoint.filesystem.get_file_info(checkpoint.path).type != pafs.FileType.NotFound


def with_checkpoint_fallback(trainable: type) -> type:
    """The trainable, skipping Tune's restore when the checkpoint Tune names is gone (pruned after Tune's
    last snapshot): the trial then finds its newest checkpoint itself (`latest_state`)."""

    class SweepTrial(trainable):
        def restore(self, checkpoint_path: Any) -> None:
            checkpoint = getattr(checkpoint_path, "checkpoint", None)
            if checkpoint is not None and not _exists(checkpoint):
                return None
            return super().restore(checkpoint_path)

    SweepTrial.__name__ = SweepTrial.__qualname__ = trainable.__name__
    return SweepTrial


# One data set on one device, kept by this worker process for the trials it runs next (actors are reused):
# normalising all of Fashion-MNIST takes a third of a second on one thread, a split a tenth of that.
_ON_DEVICE: dict[tuple[str, str], DeviceDataset] = {}


def on_device(key: str, arrays: ArrayDataset, device: torch.device) -> DeviceDataset:
    if (key, str(device)) not in _ON_DEVICE:
        _ON_DEVICE.clear()
        _ON_DEVICE[key, str(device)] = to_device(arrays, device)
    return _ON_DEVICE[key, str(device)]


def dataset_key(spec: DatasetSpec) -> str:
    """Trials that read the same files the same way share one loaded copy of the data set."""
    key = f"{spec.name}|{spec.data_dir}|{spec.download}|{spec.image_size}|{spec.channels}"
    if spec.factory:  # and an edited factory's data is other data
        key += f"|{spec.factory}|{factory_source(spec.factory)}|{json.dumps(spec.kwargs, sort_keys=True)}"
    return key


def trial_name(trial: Any) -> str:
    """Short Tune trial names (the default spells out the whole config)."""
    return f"trial_{trial.trial_id}"


def trial_dirname(trial: Any) -> str:
    """A trial's folder, where its checkpoints go: named by its trial key, so that any later run of the same
    trial finds them (`latest_state`); a replay, which trains nothing, by its Tune id."""
    if trial.config.get(REPLAY) is not None:
        return f"replay_{trial.trial_id}"
    return f"trial_{parse_trial(trial.config[PLANNED]['config']).key}"
