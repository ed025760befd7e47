"""SNAS on a fixed model (families wrn, torchvision, timm, factory): one density per masked layer, or one per
group of layers (`search.groups`: group name -> glob patterns of module names).

The model's depth and widths are not searched. A dimension is `density_<i>` for the maskable layer `i` (its
index in the `layers` table), or `density_<group>`; every masked layer of a group takes its group's density,
and layers `model.dense_layers` keeps dense stay at 1. A group pattern that matches no module, a layer two
groups take and a masked layer no group takes are each one `SpecError`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweep.core import zoo
from sweep.core.data import dataset_shape
from sweep.core.masks import active_weights
from sweep.errors import SpecError
from sweep.spec import ModelSpec, SweepSpec


@dataclass(frozen=True)
class LayerSpace:
    """The density dimensions of a fixed model; plain data, so the searcher pickles for resume."""

    names: tuple[str, ...]  # the dimensions, in the order they are suggested
    members: tuple[tuple[int, ...], ...]  # per dimension, the maskable layers it sets
    shapes: tuple[tuple[int, ...], ...]  # the kernel shape of every maskable layer
    dense: tuple[bool, ...]  # which layers `model.dense_layers` keeps dense

    def layer_densities(self, params: Mapping[str, Any]) -> list[float]:
        """Every maskable layer's density (1 for the dense ones)."""
        densities = [1.0] * len(self.shapes)
        for name, layers in zip(self.names, self.members, strict=True):
            for i in layers:
                densities[i] = float(params[name])
        return densities

    def masked_densities(self, params: Mapping[str, Any]) -> list[float]:
        """`model.densities`: one per masked layer."""
        every = self.layer_densities(params)
        return [d for d, dense in zip(every, self.dense, strict=True) if not dense]

    def active_weights(self, params: Mapping[str, Any]) -> int:
        """The active weights of the real model, its dense layers counted in full."""
        return active_weights(self.layer_densities(params), self.shapes)

    def params_of(self, model: ModelSpec, levels: Sequence[float]) -> dict[str, Any] | str:
        """The parameters that give a model's densities, or why none do (for `plans/history.py`)."""
        masked = sum(not dense for dense in self.dense)
        given = model.densities
        densities = list(given) if isinstance(given, tuple) else [given] * masked
        if model.mask != "uniform" or len(densities) != masked:
            return "without one density per masked layer"
        if any(d not in levels for d in densities):
            return "with densities outside search.density_levels"
        chosen = iter(densities)
        every = [1.0 if dense else float(next(chosen)) for dense in self.dense]
        params = {name: every[layers[0]] for name, layers in zip(self.names, self.members, strict=True)}
        if self.layer_densities(params) != every:
            return "with densities that differ within a group of search.groups"
        return params


def layer_space(spec: SweepSpec, input_shape: Sequence[int], num_classes: int) -> LayerSpace:
    """The dimensions of a fixed model's search, from its layers and `search.groups`."""
    model, groups = spec.model, spec.search.groups if spec.search else {}
    described = zoo.described_layers(model, tuple(input_shape), num_classes)
    names = [name for name, _ in described]
    dense = zoo.dense_flags(model, input_shape, num_classes)
    masked = [i for i, flag in enumerate(dense) if not flag]
    shapes = tuple(shape for _, shape in described)
    if not groups:
        dims = tuple(f"density_{i}" for i in masked)
        return LayerSpace(dims, tuple((i,) for i in masked), shapes, tuple(dense))
    owner: dict[int, str] = {}
    members = []
    for group, patterns in groups.items():
        if not patterns:
            raise SpecError(f"search.groups.{group}: has no pattern; give glob patterns of module names")
        taken = []
        for pattern in patterns:
            found = [i for i, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
            if not found:
                where = f"search.groups.{group}: {pattern!r}"
                raise SpecError(f"{where} matches no maskable module; they are: {_shown(names)}")
            taken += [i for i in found if not dense[i] and i not in taken]
        for i in taken:
            if i in owner:
                raise SpecError(
                    f"search.groups: layer {names[i]!r} is in both {owner[i]} and {group}; each masked "
                    "layer belongs to one group"
                )
            owner[i] = group
        if not taken:
            raise SpecError(
                f"search.groups.{group}: matches only layers model.dense_layers keeps dense; give it a "
                "masked layer or leave the group out"
            )
        members.append(tuple(sorted(taken)))
    left = [names[i] for i in masked if i not in owner]
    if left:
        raise SpecError(
            f"search.groups: masked layers in no group: {_shown(left)}; add them to a group (groups: "
            f"{', '.join(groups)}) or keep them dense with model.dense_layers"
        )
    dims = tuple(f"density_{group}" for group in groups)
    return LayerSpace(dims, tuple(members), shapes, tuple(dense))


def check_search(spec: SweepSpec) -> None:
    """The search settings that depend on the model's family, and a fixed model's groups: one line each,
    before anything runs."""
    search, model = spec.search, spec.model
    if search is None:
        return
    if model.built_in:
        if search.groups:
            raise SpecError(
                f"search.groups: applies to the families wrn, torchvision, timm and factory; each layer of "
                f"family {model.family} has a density of its own (density_0 .. density_out)"
            )
        return
    for key in ("max_depth", "widths"):
        if getattr(search, key) is not None:
            raise SpecError(
                f"search.{key}: a {model.family} model's architecture is fixed; it applies to the families "
                "mlp and cnn (the search varies the densities)"
            )
    if search.baselines:
        raise SpecError(
            f"search.baselines: scale the widths of the families mlp and cnn; a {model.family} model has "
            "none to scale (use baselines: false)"
        )
    layer_space(spec, *dataset_shape(spec.dataset))


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
