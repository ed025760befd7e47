"""Random masks: exactly `count` active weights at positions drawn from a generator."""

from __future__ import annotations

import math

import torch

from sweep.core.masks.allocation import Shape


def random_mask(shape: Shape, count: int, generator: torch.Generator) -> torch.Tensor:
    """A float mask of `shape` with exactly `count` ones at random positions."""
    size = math.prod(shape)
    flat = torch.zeros(size)
    flat[torch.randperm(size, generator=generator)[:count]] = 1.0
    return flat.view(shape)
