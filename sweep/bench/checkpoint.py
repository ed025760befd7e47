"""Checkpoints: an epoch as a worker runs it, with the checkpoint it hands Tune afterwards, or without.

The checkpointed side does what a worker does after every epoch with `train.checkpoint_every: 1`: capture
the trial's state, write it with its history (`sweep.core.checkpoint`), copy the folder into the storage the
way Tune persists a reported checkpoint (`pyarrow.fs.copy_files`) and drop the one before (Tune keeps one).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from sweep.bench.harness import DEFAULT, Result, Settings, Trainer, alternate, paired
from sweep.core import checkpoint
from sweep.core.data import Split, Splits
from sweep.core.epoch import EVAL_BATCH, evaluate
from sweep.core.gradflow import measure_flow
from sweep.spec import TrainSpec

HISTORY_EPOCHS = 100  # the reports a checkpoint carries, as a trial 100 epochs in has


def checkpoint_cost(splits: Splits, settings: Settings) -> Result:
    """A full epoch (training, evaluation, EGF probe) with a checkpoint after it, against one without."""
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    trainer = Trainer(DEFAULT, splits, settings, tcfg)
    probe = Split(splits.train.x[:2048], splits.train.y[:2048])
    report = {"epoch": 1, "test_acc": 0.5, "egf": 0.1, "layers": [{"g_masked_l2": 0.1}] * 3}
    history = [dict(report, epoch=epoch) for epoch in range(HISTORY_EPOCHS)]
    storage = Path(tempfile.mkdtemp(prefix="sweep-bench-storage-"))
    saved: list[Path] = []
    sizes: list[int] = []

    def epoch(with_checkpoint: bool) -> None:
        trainer.epoch(splits.train)
        evaluate(trainer.model, splits.test)
        flow = measure_flow(trainer.model, probe.x, probe.y, chunk_size=EVAL_BATCH[settings.device.type])
        if not with_checkpoint:
            return
        state = {**checkpoint.capture(trainer.training, 1), "history": history}
        state["last_report"] = {**report, **flow.measures()}
        with tempfile.TemporaryDirectory(prefix="sweep-checkpoint-") as folder:
            sizes.append(checkpoint.save_state(state, folder).stat().st_size)
            target = storage / f"checkpoint_{len(saved):06d}"
            target.mkdir()
            pafs.copy_files(folder, str(target), destination_filesystem=pafs.LocalFileSystem())
        if saved:
            shutil.rmtree(saved[-1])
        saved.append(target)

    try:
        times_a, times_b = alternate(lambda: epoch(True), lambda: epoch(False), settings)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    extra = {"checkpoint_bytes": sizes[-1], "history_epochs": HISTORY_EPOCHS}
    return paired(times_a, times_b, "epoch with checkpoint s", "epoch without s", extra)
