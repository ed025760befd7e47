"""Subnormal floats: the trainer's passes over weights that hold some, kept as they are against flushed.

The weights are the reference MLP's with a share of its active weights set to a subnormal value, the state
`paper-ewma`'s RMSProp checkpoints were in (3 to 40% of a layer). A pass is the forward and backward pass of
the trainer's steps over the batches; no optimizer step runs, so the weights stay as they were set, and the
flushed side reads them as zero without rewriting them. One thread, as a trial with `resources.cpu: 1` trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sweep.bench.harness import REFERENCE, Result, Settings, Trainer, alternate, chunk, paired
from sweep.core.data import Splits
from sweep.core.numerics import flush_subnormals
from sweep.spec import TrainSpec

SHARE = 0.05  # of each layer's active weights
SUBNORMAL = 1e-39
SMALLEST_NORMAL = torch.finfo(torch.float32).tiny  # 1.18e-38


def subnormal_cost(splits: Splits, settings: Settings) -> Result:
    """Forward and backward passes with subnormal weights computed as they are / with them flushed."""
    trainer = Trainer(REFERENCE, splits, settings, TrainSpec())  # its model only: no optimizer step runs
    model, batches = trainer.model, chunk(splits, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the flag is per thread: on one, it governs every operation below
    flush_subnormals(False)  # so that the values written below stay subnormal
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.weight_layers:
            weight = layer.weight
            chosen = (torch.rand(weight.shape, generator=generator) < SHARE).to(weight.device)
            weight[chosen & (weight != 0)] = SUBNORMAL
    weights = [layer.weight for layer in model.weight_layers]
    subnormals = sum(int(((w != 0) & (w.abs() < SMALLEST_NORMAL)).sum()) for w in weights)
    active = sum(layer.active_weights for layer in model.weight_layers)

    def passes(flush: bool) -> None:
        flush_subnormals(flush)
        model.train()
        for start in range(0, len(batches), trainer.tcfg.batch_size):
            x = batches.x[start : start + trainer.tcfg.batch_size]
            y = batches.y[start : start + trainer.tcfg.batch_size]
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()

    try:
        times_a, times_b = alternate(lambda: passes(False), lambda: passes(True), settings)
    finally:
        flush_subnormals()  # as the trainer runs
        torch.set_num_threads(threads)
    extra = {"steps": settings.steps, "subnormal_weights": subnormals, "active_weights": active}
    return paired(times_a, times_b, "subnormals kept s", "subnormals flushed s", extra)
