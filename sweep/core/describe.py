"""A model's maskable layers as a table, before anything trains: module name, kind, kernel shape, density and
active weights, from the spec and the data's shape alone (another family's model is built on the meta
device, the MLP and CNN from their widths). What `sweep run --dry-run` shows."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sweep.core import zoo
from sweep.core.masks import active_count
from sweep.core.models import model_densities, weight_shapes
from sweep.spec import ModelSpec


def layer_table(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """One row per maskable layer: `module`, `kind`, `shape`, `density`, `active`, `total`."""
    shapes = weight_shapes(spec, input_shape, num_classes)
    densities = model_densities(spec, input_shape, num_classes)
    names = zoo.layer_names(spec, input_shape, num_classes) if not spec.built_in else _built_in_names(spec)
    return [
        {
            "module": name,
            "kind": "linear" if len(shape) == 2 else "conv",
            "shape": shape,
            "density": density,
            "active": active_count(density, math.prod(shape)),
            "total": math.prod(shape),
        }
        for name, shape, density in zip(names, shapes, densities, strict=True)
    ]


def _built_in_names(spec: ModelSpec) -> list[str]:
    """The MLP's and CNN's layers by their place: hidden layers 1..depth, then the output layer."""
    return [f"hidden {i + 1}" for i in range(len(spec.widths))] + ["output"]


def table_lines(rows: Sequence[dict], limit: int = 40) -> list[str]:
    """The table as aligned text lines, the first `limit` rows and a count of the rest, then the totals."""
    active, total = sum(r["active"] for r in rows), sum(r["total"] for r in rows)
    width = max(len("module"), *(len(r["module"]) for r in rows))
    lines = [f"    {'module':<{width}}  kind    {'shape':<18} density       active"]
    for row in rows[:limit]:
        shape = "×".join(map(str, row["shape"]))
        figures = f"{row['density']:7.4f} {row['active']:>12,}"
        lines.append(f"    {row['module']:<{width}}  {row['kind']:<6}  {shape:<18} {figures}")
    if len(rows) > limit:
        lines.append(f"    ... and {len(rows) - limit} more layers")
    lines.append(f"    {len(rows)} layers: {active:,} of {total:,} weights active ({active / total:.1%})")
    return lines
