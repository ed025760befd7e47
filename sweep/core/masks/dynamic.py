"""Dynamic sparse training: SET (Mocanu et al., 2018) and RigL (Evci et al., 2020).

Every `update_every` steps until `update_end` of training, each layer drops the fraction
α_t = α/2 · (1 + cos(π t / T_end)) of its active weights with the smallest |θ| and regrows as many at inactive
positions: SET at random from the trial's seed, RigL where the dense gradient |∂L/∂θ| of the current batch is
largest. Newly grown weights start at zero with no optimizer state, and every layer's active count stays the
same, so a same-capacity comparison still holds. A weight that one update drops and regrows keeps its value
and state (`regrown: keep`, RigL's default, as its reference code does) or restarts at zero (`reset`, SET's).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sweep.core.masks.schedule import MaskSchedule, set_mask
from sweep.core.masks.selection import fixed_layers, top_k_mask
from sweep.spec import SparsitySpec

_STREAM = 5


class DynamicSparse(MaskSchedule):
    """SET (`regrow="random"`) or RigL (`regrow="gradient"`) over `total_steps` training steps."""

    changes_masks = True

    def __init__(self, spec: SparsitySpec, regrow: str, total_steps: int, seed: int) -> None:
        self.regrow, self.every, self.alpha = regrow, spec.update_every, spec.drop_fraction
        self.reset_regrown = spec.effective_regrown == "reset"
        self.end = max(1, int(spec.update_end * total_steps))
        self.next_step = self.every if self.every < self.end else -1
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + _STREAM)

    def drop_fraction(self, step: int) -> float:
        return self.alpha / 2 * (1 + math.cos(math.pi * step / self.end))

    def update(self, step: int) -> None:
        fraction = self.drop_fraction(step)
        model = self.training.model
        for layer, fixed in zip(model.weight_layers, fixed_layers(model), strict=True):
            if not fixed:  # a layer `model.dense_layers` keeps dense
                self.update_layer(layer, fraction)
        following = step + self.every
        self.next_step = following if following < self.end else -1

    def update_layer(self, layer: torch.nn.Module, fraction: float) -> None:
        """Drop the weakest `fraction` of the layer's active weights and regrow as many elsewhere."""
        active = layer.mask.bool()
        count = round(fraction * int(active.sum()))
        if count == 0:
            return
        weight = layer.weight.detach()
        weakest = torch.where(active, -weight.abs(), torch.tensor(-math.inf, device=weight.device))
        kept = active & ~top_k_mask(weakest, count, self.generator).bool().to(weight.device)
        if self.regrow == "gradient":
            scores = layer.weight.grad.detach().abs()
        else:
            scores = torch.rand(weight.shape, generator=self.generator).to(weight.device)
        scores = torch.where(kept, torch.tensor(-math.inf, device=weight.device), scores)
        grown = top_k_mask(scores, count, self.generator).bool().to(weight.device)
        if self.reset_regrown:  # a weight dropped and regrown restarts at zero too
            set_mask(layer, kept.float(), self.training.optimizer)
        set_mask(layer, (kept | grown).float(), self.training.optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {"next_step": self.next_step, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_step = state["next_step"]
        self.generator.set_state(state["generator"])
