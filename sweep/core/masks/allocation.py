"""Mask allocation: how many weights each layer keeps.

Strategies fill per-layer densities (uniform, ERK, an explicit list, dense), and every layer then keeps
exactly `active_count(density, size)` weights. Shapes are plain tuples, so the search and the SC-SDC grid
can count weights without building a model (plain Python: no torch here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sweep.errors import SpecError

Shape = tuple[int, ...]


def layer_densities(mask: str, densities: float | Sequence[float], shapes: Sequence[Shape]) -> list[float]:
    """Per-layer densities for an allocation strategy."""
    if mask == "dense":
        return [1.0] * len(shapes)
    if not isinstance(densities, int | float):
        if len(densities) != len(shapes):
            raise SpecError(f"model.densities: {len(densities)} densities for {len(shapes)} weight layers")
        return [float(d) for d in densities]
    if mask == "erk":
        return erk_densities(float(densities), shapes)
    if mask == "uniform":
        return [float(densities)] * len(shapes)
    raise SpecError(f"model.mask: {mask!r} is not allowed; choose one of uniform, erk, dense")


def erk_densities(overall: float, shapes: Sequence[Shape]) -> list[float]:
    """Erdős–Rényi-Kernel: density ∝ sum(shape) / prod(shape), scaled to hit `overall`, capped at 1.

    Layers that would exceed 1 are made dense and their excess is spread over the rest.
    """
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / math.prod(s) for s in shapes]
    dense: set[int] = set()
    while True:
        budget = overall * sum(sizes) - sum(sizes[i] for i in dense)
        rest = sum(raw[i] * sizes[i] for i in range(len(shapes)) if i not in dense)
        if rest <= 0:
            return [1.0] * len(shapes)
        scale = budget / rest
        over = {i for i in range(len(shapes)) if i not in dense and scale * raw[i] > 1.0}
        if not over:
            return [1.0 if i in dense else scale * raw[i] for i in range(len(shapes))]
        dense |= over


def active_count(density: float, size: int) -> int:
    """The number of active weights for a density: exactly round(density × size)."""
    return round(density * size)


def active_weights(densities: Sequence[float], shapes: Sequence[Shape]) -> int:
    return sum(active_count(d, math.prod(s)) for d, s in zip(densities, shapes, strict=True))


def check_counts(densities: Sequence[float], shapes: Sequence[Shape]) -> None:
    """Every layer keeps at least one weight."""
    for i, (d, s) in enumerate(zip(densities, shapes, strict=True)):
        if active_count(d, math.prod(s)) < 1:
            raise SpecError(
                f"model.densities: layer {i} ({'×'.join(map(str, s))}) keeps no weight at density {d}"
            )
