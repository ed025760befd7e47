"""How a trial's masks change while it trains, and the one safe way to change a mask.

A `MaskSchedule` is asked for an update at `next_step` (a training step; -1: never); the update takes that
step's place (its gradients are still the dense ones, which RigL needs), as the reference implementations
do. A method that trains in levels (IMP) also starts levels in `before_epoch`. `set_mask` keeps the
project's invariant: a masked weight is exactly zero, and a weight whose mask changed starts from zero with
no optimizer state (momentum, Adam moments, Adagrad sums), so no old state moves it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn


class Training(Protocol):
    """What a schedule may touch: the trial's model, its optimizer, and a way to start training afresh."""

    model: nn.Module
    optimizer: torch.optim.Optimizer

    def restart(self, epoch: int) -> None: ...


class MaskSchedule:
    """Masks that never change (random and pruning at initialisation): the base of the others."""

    changes_masks = False
    next_step = -1

    def attach(self, training: Training) -> None:
        self.training = training

    def total_epochs(self, epochs: int) -> int:
        return epochs

    def level(self, epoch: int) -> int:
        return 0

    def before_epoch(self, epoch: int) -> None:
        pass

    def after_epoch(self, epoch: int) -> None:
        pass

    def update(self, step: int) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@torch.no_grad()
def set_mask(layer: nn.Module, mask: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    """Give a masked layer a new mask: weights outside it become zero, and every position whose mask changed
    loses its optimizer state, so a regrown weight starts at zero with fresh moments."""
    new = mask.to(device=layer.mask.device, dtype=layer.mask.dtype)
    changed = new != layer.mask
    layer.mask.copy_(new)
    layer.weight.mul_(new)
    layer.active_weights = int(new.sum().item())
    state = optimizer.state.get(layer.weight, {}) if optimizer is not None else {}
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.shape == changed.shape:
            value.masked_fill_(changed, 0.0)


class MaskChanges:
    """The share of each layer's mask that changed since the last call (positions that flipped / size)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        self.layers = layers
        self.last = [layer.dense_mask().bool().clone() for layer in layers]

    def shares(self) -> list[float]:
        now = [layer.dense_mask().bool() for layer in self.layers]
        shares = [(a ^ b).sum().item() / a.numel() for a, b in zip(now, self.last, strict=True)]
        self.last = [m.clone() for m in now]
        return shares
