"""The trainer: one `TrialConfig` in, per-epoch metrics out through a callback. Plain PyTorch, no Ray.

Read it top to bottom: `train_trial` builds the data and the masked model (its mask method chooses the
masks, `sweep.core.masks.methods`), reports epoch 0 (the untrained net), then trains epoch by epoch. After
each epoch it evaluates, probes the gradient flow on a fixed probe set (on the masks in force), and reports.
A NaN or inf training loss ends the trial as `diverged`. Every report can capture the trial's state
(`EpochReport.capture`), and `resume=` continues a trial from such a state exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import torch

from sweep.core import checkpoint
from sweep.core.data import ArrayDataset, DeviceDataset, Split, Splits, load_arrays, make_splits
from sweep.core.epoch import EVAL_BATCH, evaluate, train_epoch
from sweep.core.facts import TrialFacts, resolve_device, trial_facts
from sweep.core.gradflow import measure_flow
from sweep.core.layers import MaskEnforcer
from sweep.core.masks import methods
from sweep.core.masks.schedule import MaskChanges, MaskSchedule
from sweep.core.models import SparseNet
from sweep.core.numerics import flush_subnormals
from sweep.core.optim import lr_schedule, make_optimizer
from sweep.core.precision import check_precision
from sweep.spec import TrainSpec, TrialConfig


@dataclass(frozen=True)
class EpochReport:
    """One epoch's metrics (the `epochs` row) and per-layer gradient flow (the `layers` rows).

    `capture()` returns the trial's state after this epoch (see `sweep.core.checkpoint`); it is only
    computed when asked for, so a caller that keeps no checkpoints pays nothing.
    """

    epoch: int
    metrics: dict[str, float | None]
    layers: list[dict]
    diverged: bool = False
    capture: Callable[[], dict[str, Any]] | None = field(default=None, repr=False, compare=False)


@dataclass
class TrialOutcome:
    config: TrialConfig
    status: str = "done"
    error: str | None = None
    facts: TrialFacts | None = None
    epochs: list[EpochReport] = field(default_factory=list)
    model: SparseNet | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None


EpochCallback = Callable[[EpochReport, TrialFacts], None]


class Training:
    """The model and what trains it: the optimizer, the learning-rate schedule, the mask enforcer, and the
    mask method's schedule. `restart` starts training afresh (a new IMP level)."""

    def __init__(self, model: SparseNet, tcfg: TrainSpec, masks: MaskSchedule) -> None:
        self.model, self.tcfg, self.masks = model, tcfg, masks
        self.enforcer = MaskEnforcer(model.weight_layers)
        self.restart(0)
        masks.attach(self)

    def restart(self, epoch: int) -> None:
        """A fresh optimizer, and the schedule as it was after `epoch` epochs."""
        self.optimizer = make_optimizer(self.model.parameters(), self.tcfg)
        self.schedule = lr_schedule(self.optimizer, self.tcfg)
        with warnings.catch_warnings():  # stepping the schedule alone on purpose, to where training resumes
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for _ in range(epoch):
                self.schedule.step()


def train_trial(
    config: TrialConfig,
    *,
    data: ArrayDataset | DeviceDataset | Splits | None = None,
    on_epoch: EpochCallback | None = None,
    resume: dict[str, Any] | None = None,
) -> TrialOutcome:
    """Train one trial. `data` may be pre-loaded arrays, tensors already on the device, or ready splits.

    `resume` is a state captured after some epoch: training goes on from the next one, and only the epochs
    after it are reported."""
    outcome = TrialOutcome(config)
    seed, tcfg = config.train.seed, config.train
    device = resolve_device(tcfg.device)
    check_precision(tcfg.precision, device)
    flush_subnormals()
    torch.manual_seed(seed)
    splits = (
        data
        if isinstance(data, Splits)
        else make_splits(
            data if data is not None else load_arrays(config.dataset), config.dataset, seed, device
        )
    )
    model, masks = methods.start(config, splits, device, resume["masks"] if resume else None)
    training = Training(model, tcfg, masks)
    probe = Split(*splits.train.take(torch.arange(min(config.egf.samples, len(splits.train)))))
    epochs = masks.total_epochs(tcfg.epochs)
    steps_per_epoch = math.ceil(len(splits.train) / tcfg.batch_size)
    changes = MaskChanges(model.weight_layers) if masks.changes_masks else None
    outcome.facts, outcome.model = trial_facts(model, device, epochs), model

    def report(
        epoch: int, train_stats: tuple[float, float] | None, train_s: float, lr: float, started: float
    ) -> EpochReport:
        test_loss, test_acc = evaluate(model, splits.test)
        _, val_acc = evaluate(model, splits.val)
        flow = measure_flow(model, probe.x, probe.y, mode=config.egf.mode, chunk_size=EVAL_BATCH[device.type])
        train_loss, train_acc = train_stats or (None, None)
        metrics = {
            "epoch": epoch,
            "level": masks.level(epoch),
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            **flow.measures(),
            "lr": lr,
            "seconds": time.perf_counter() - started,
            "samples_per_s": len(splits.train) / train_s if train_stats else None,
        }
        diverged = train_loss is not None and not math.isfinite(train_loss)
        shares = changes.shares() if changes is not None else [0.0] * len(model.weight_layers)
        layers = [
            {**row, "mask_changed": share if epoch else None}
            for row, share in zip(flow.layer_rows(), shares, strict=True)
        ]
        if changes is not None:
            outcome.facts = trial_facts(model, device, epochs)

        def capture() -> dict[str, Any]:
            return checkpoint.capture(training, epoch)

        result = EpochReport(epoch, metrics, layers, diverged, capture)
        outcome.epochs.append(result)
        if on_epoch is not None:
            on_epoch(result, outcome.facts)
        return result

    first = 1
    if resume is not None:
        first = checkpoint.restore(resume, training) + 1
        changes = MaskChanges(model.weight_layers) if masks.changes_masks else None
    else:
        report(0, None, 0.0, training.optimizer.param_groups[0]["lr"], time.perf_counter())
    for epoch in range(first, epochs + 1):
        started = time.perf_counter()
        masks.before_epoch(epoch)
        lr = training.optimizer.param_groups[0]["lr"]
        stats = train_epoch(training, splits.train, epoch, first_step=(epoch - 1) * steps_per_epoch)
        train_s = time.perf_counter() - started
        training.schedule.step()
        masks.after_epoch(epoch)
        if report(epoch, stats, train_s, lr, started).diverged:
            outcome.status = "diverged"
            break
    outcome.ended_at = datetime.now(UTC)
    return outcome
