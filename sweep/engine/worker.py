"""What runs on a Ray worker: the Tune function trainable around the core trainer.

Kept apart from the driver's modules so that a worker imports only torch, Ray Tune and the core (no Optuna,
no DuckDB, no pandas): a new worker is ready sooner.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import ray
import torch
from ray import tune

from sweep.core.data import ArrayDataset, DeviceDataset, to_device
from sweep.core.train import EpochReport, TrialFacts, resolve_device, train_trial
from sweep.plans.types import PLANNED
from sweep.spec import DatasetSpec, parse_trial


@ray.remote(num_cpus=0)
class FinishedTrials:
    """The sweep's finished trials by trial key, with the result each reported last. A trial whose
    configuration is here (done before an interruption, or earlier in this run: a searcher may propose a
    configuration twice) hands that result to Tune again instead of training."""

    def __init__(self) -> None:
        self._results: dict[str, dict] = {}

    def add(self, results: Mapping[str, dict]) -> None:
        self._results.update(results)

    def get(self, key: str) -> dict | None:
        return self._results.get(key)


def finished_trials_name(sweep: str) -> str:
    """The name of a sweep's `FinishedTrials` actor, which the driver's callback adds to."""
    return f"sweep-finished-trials-{sweep}"


def run_planned_trial(config: dict, data: Mapping[str, ArrayDataset], threads: int, finished: Any) -> None:
    """Tune function trainable: the core trainer, reporting every epoch to the driver.

    `finished` is the sweep's `FinishedTrials` actor."""
    trial = parse_trial(config[PLANNED]["config"])
    replay = ray.get(finished.get.remote(trial.key))
    if replay is not None:  # hand the searcher the result it already has; train nothing
        tune.report({**replay, "replayed": True})
        return
    torch.set_num_threads(threads)
    started = time.time()

    def on_epoch(report: EpochReport, facts: TrialFacts) -> None:
        tune.report(
            {
                **report.metrics,
                "layers": report.layers,
                "facts": dataclasses.asdict(facts),
                "diverged": report.diverged,
                "active_weights": facts.active_weights,
                "trial_key": trial.key,
                "trial_started": started,
            }
        )

    key = dataset_key(trial.dataset)
    train_trial(trial, data=on_device(key, data[key], resolve_device(trial.train.device)), on_epoch=on_epoch)


# One data set on one device, kept by this worker process for the trials it runs next (actors are reused):
# normalising all of Fashion-MNIST takes a third of a second on one thread, a split a tenth of that.
_ON_DEVICE: dict[tuple[str, str], DeviceDataset] = {}


def on_device(key: str, arrays: ArrayDataset, device: torch.device) -> DeviceDataset:
    if (key, str(device)) not in _ON_DEVICE:
        _ON_DEVICE.clear()
        _ON_DEVICE[key, str(device)] = to_device(arrays, device)
    return _ON_DEVICE[key, str(device)]


def dataset_key(spec: DatasetSpec) -> str:
    """Trials that read the same files share one loaded copy of the data set."""
    return f"{spec.name}|{spec.data_dir}|{spec.download}"


def trial_name(trial: Any) -> str:
    """Short Tune trial names and folders (the default spells out the whole config)."""
    return f"trial_{trial.trial_id}"
