"""Subnormal floats are flushed to zero on the CPU while a trial trains.

Adaptive optimizers with L2 and batch norm (RMSProp or Adam with `weight_decay`, BN on) shrink the weights and
the optimizer state of units that have stopped learning until they sit below float32's smallest normal
number (1.2e-38). x86 CPUs compute with such subnormal values in microcode, many times slower than with
normal ones, so an epoch gets slower as they accumulate: in `paper-ewma`'s RMSProp trials, 3 to 40% of a
layer's weights were subnormal after 19 epochs and the epochs had grown from 4 s to 30 s and more.

Flushing (treating subnormal inputs and results as zero) changes a value only where it is below 1.2e-38,
far below the last bit of any weight a net learns, so a trial's numbers are those of the same training
with those values rounded to zero. `sweep bench` measures what it saves (`subnormal_cost`). GPUs handle
subnormal float32 at full speed, so this is about the CPU alone.

The flag belongs to each CPU thread, and a thread takes it from the one that starts it: the worker sets it
before torch starts its thread pool, and the trainer sets it again for the thread it trains on.
"""

from __future__ import annotations

import torch


def flush_subnormals(enabled: bool = True) -> bool:
    """Flush subnormal floats to zero on the CPU from now on (False where the CPU cannot, as torch says)."""
    return torch.set_flush_denormal(enabled)
