"""Magnitude pruning while training: gradual (Zhu and Gupta, 2017) and iterative with rewinding (lottery
tickets: Frankle and Carbin, 2019; Frankle et al., 2020). Both start dense and prune the smallest |θ|.

- GMP: from `prune_start` to `update_end` of training, every `update_every` steps, the sparsity follows
  s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(nΔt))³ from dense (s_i = 0) to the target s_f, each layer to its own
  target (`scope: layer`) or with one threshold (`scope: global`, the total kept).
- IMP: level 0 trains the dense net for `train.epochs` epochs; each next level prunes `prune_fraction` of the
  remaining weights (geometric steps; the last level reaches the target exactly), rewinds the kept weights
  (and every other parameter) to their values after epoch `rewind_epoch` of level 0 (0: the initialisation)
  and trains again with a fresh optimizer. A trial runs all its levels, epochs numbered on; its last level
  is its result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from sweep.core.masks.schedule import MaskSchedule, Training, set_mask
from sweep.core.masks.selection import fixed_layers, keep_top, pinned
from sweep.spec import SparsitySpec

_STREAM = 6


class _MagnitudePruning(MaskSchedule):
    changes_masks = True

    def __init__(self, spec: SparsitySpec, counts: Sequence[int], sizes: Sequence[int], seed: int) -> None:
        self.scope, self.targets, self.sizes = spec.effective_scope, list(counts), list(sizes)
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + _STREAM)

    def counts_at(self, share: float, geometric: bool) -> list[int]:
        """Counts `share` of the way from dense to the targets (in density: linearly, or geometrically);
        one total over all layers with `scope: global`."""
        sizes, targets = self.sizes, self.targets
        if self.scope == "global":
            sizes, targets = [sum(sizes)], [sum(targets)]
        if geometric:
            counts = [
                round(size * (target / size) ** share) for size, target in zip(sizes, targets, strict=True)
            ]
        else:
            counts = [
                round(size - share * (size - target)) for size, target in zip(sizes, targets, strict=True)
            ]
        return counts + [0] * (len(self.sizes) - len(counts))

    def keep_largest(self, counts: list[int]) -> None:
        """Keep the largest |θ| among each layer's active weights (or all layers' with one threshold)."""
        layers = self.training.model.weight_layers
        scores = [torch.where(layer.mask.bool(), layer.weight.detach().abs(), -1.0) for layer in layers]
        scores = pinned(scores, fixed_layers(self.training.model))
        for layer, mask in zip(layers, keep_top(scores, counts, self.scope, self.generator), strict=True):
            set_mask(layer, mask, self.training.optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "next_step": self.next_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.next_step = state["next_step"]


class GradualMagnitude(_MagnitudePruning):
    """GMP over `total_steps` training steps."""

    def __init__(
        self, spec: SparsitySpec, counts: Sequence[int], sizes: Sequence[int], total_steps: int, seed: int
    ) -> None:
        super().__init__(spec, counts, sizes, seed)
        self.start = int(spec.prune_start * total_steps)
        end = max(self.start + 1, min(int(spec.update_end * total_steps), total_steps - 1))
        self.pruning_steps = max(1, (end - self.start) // spec.update_every)  # n
        self.every = max(1, (end - self.start) // self.pruning_steps)  # Δt, so that t₀ + nΔt ≤ the end
        self.next_step = self.start + self.every

    def update(self, step: int) -> None:
        k = (step - self.start) // self.every
        self.keep_largest(self.counts_at(1 - (1 - k / self.pruning_steps) ** 3, geometric=False))
        self.next_step = step + self.every if k < self.pruning_steps else -1


def imp_levels(spec: SparsitySpec, counts: Sequence[int], sizes: Sequence[int]) -> int:
    """IMP's levels: as given, or as many as pruning `prune_fraction` per level needs to reach the target."""
    if spec.levels:
        return spec.levels
    overall = sum(counts) / sum(sizes)
    return max(1, round(math.log(overall) / math.log(1 - spec.prune_fraction))) if overall < 1 else 1


class IterativeMagnitude(_MagnitudePruning):
    """IMP with `train.epochs` epochs per level."""

    def __init__(
        self, spec: SparsitySpec, counts: Sequence[int], sizes: Sequence[int], epochs: int, seed: int
    ) -> None:
        super().__init__(spec, counts, sizes, seed)
        self.levels = imp_levels(spec, counts, sizes)
        self.epochs, self.rewind_epoch = epochs, min(spec.rewind_epoch, epochs)
        self.rewind_to: dict[str, torch.Tensor] | None = None

    def attach(self, training: Training) -> None:
        super().attach(training)
        if self.rewind_epoch == 0 and self.rewind_to is None:
            self.rewind_to = self._snapshot()

    def total_epochs(self, epochs: int) -> int:
        return (self.levels + 1) * epochs

    def level(self, epoch: int) -> int:
        return max(0, epoch - 1) // self.epochs

    def after_epoch(self, epoch: int) -> None:
        if self.rewind_to is None and epoch == self.rewind_epoch:
            self.rewind_to = self._snapshot()

    def before_epoch(self, epoch: int) -> None:
        """At the first epoch of a level: prune, rewind, and start training again."""
        if epoch == 1 or (epoch - 1) % self.epochs:
            return
        self.keep_largest(self.counts_at(self.level(epoch) / self.levels, geometric=True))
        model = self.training.model
        masks = {name: value for name, value in model.state_dict().items() if name.endswith("mask")}
        model.load_state_dict({**self.rewind_to, **masks})
        for layer in model.weight_layers:  # the rewound weights, inside the new masks
            set_mask(layer, layer.mask.clone(), None)
        self.training.restart(self.rewind_epoch)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        state = self.training.model.state_dict()
        return {name: value.detach().clone() for name, value in state.items() if not name.endswith("mask")}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rewind_to": self.rewind_to}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rewind_to = state["rewind_to"]
