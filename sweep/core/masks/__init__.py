"""Masks: how many weights each layer keeps (allocation) and which ones (one module per method family)."""

from sweep.core.masks.allocation import (
    Shape,
    active_count,
    active_weights,
    check_counts,
    erk_densities,
    layer_densities,
)
from sweep.core.masks.random import random_mask

__all__ = [
    "Shape",
    "active_count",
    "active_weights",
    "check_counts",
    "erk_densities",
    "layer_densities",
    "random_mask",
]
