"""The model section's rules: which settings each family takes, checked before anything is built.

The project's MLP and CNN are described by `widths` and their layer settings; every other family (the CIFAR
Wide ResNet, a torchvision or timm model by `name`, the user's `factory`) by its builder's `kwargs`, with
`dense_layers` naming modules kept dense. A model section that names a `factory` and no family is family
`factory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweep.errors import SpecError
from sweep.spec.schema import BUILT_IN, ModelSpec

_BUILT_IN_ONLY = ("widths", "init_widths", "activation", "batchnorm", "dropout", "skip", "init")
_OTHERS_ONLY = ("name", "factory", "kwargs", "dense_layers")


def implied_family(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The raw spec with `model.family: factory` filled in where the model names a factory and no family."""
    model = raw.get("model")
    if isinstance(model, Mapping) and model.get("factory") is not None and "family" not in model:
        return {**raw, "model": {**model, "family": "factory"}}
    return raw


def check_model(model: ModelSpec, path: str) -> None:
    """The settings of the model's family, and only those."""
    default = ModelSpec()
    if model.built_in:
        for key in _OTHERS_ONLY:
            if getattr(model, key) != getattr(default, key):
                raise SpecError(
                    f"{path}.{key}: family {model.family} is the project's own; {key} applies to the "
                    "families wrn, torchvision, timm and factory"
                )
        _check_built_in(model, path)
        return
    for key in _BUILT_IN_ONLY:
        if getattr(model, key) != getattr(default, key):
            raise SpecError(
                f"{path}.{key}: applies to the families mlp and cnn; a {model.family} model is set by "
                f"{path}.kwargs (and {path}.name or {path}.factory)"
            )
    needs = {"torchvision": "name", "timm": "name", "factory": "factory"}.get(model.family)
    for key in ("name", "factory"):
        given = getattr(model, key) is not None
        if key == needs and not given:
            raise SpecError(f"{path}.{key}: family {model.family} needs one (for example {_example(key)})")
        if key != needs and given:
            raise SpecError(f"{path}.{key}: does not apply to family {model.family}")
    if model.backend == "sparse":
        raise SpecError(
            f"{path}.backend: sparse kernels serve the mlp and cnn families; a {model.family} model trains "
            "masked (use auto or masked)"
        )


def _check_built_in(model: ModelSpec, path: str) -> None:
    layers = model.num_weight_layers
    if isinstance(model.densities, tuple) and len(model.densities) != layers:
        raise SpecError(
            f"{path}.densities: {list(model.densities)} has {len(model.densities)} entries, but the model "
            f"has {layers} weight layers ({len(model.widths)} hidden + output); "
            f"give {layers} densities or one float"
        )
    if model.init_widths is not None and len(model.init_widths) != len(model.widths):
        raise SpecError(
            f"{path}.init_widths: {list(model.init_widths)} must have one entry per hidden layer "
            f"({len(model.widths)})"
        )


def check_erk(model: ModelSpec, path: str) -> None:
    if model.mask == "erk" and isinstance(model.densities, tuple):
        raise SpecError(f"{path}.densities: mask erk takes one overall density, got a list")


def check_family_kind(kind: str, model: ModelSpec, dense_reference: bool) -> None:
    """SC-SDC pairs, SNAS and a grid's dense references vary the widths of the project's own families."""
    if dense_reference and model.family not in BUILT_IN:
        raise SpecError(
            f"grid.dense_reference: scales the widths of the families mlp and cnn; a {model.family} model "
            "has none to scale"
        )
    if kind in ("sc_sdc", "snas") and model.family not in BUILT_IN:
        raise SpecError(
            f"kind: {kind} varies the widths of the families mlp and cnn; a {model.family} model runs as "
            "kind single or grid (grid axes may vary its kwargs, densities and mask method)"
        )


def _example(key: str) -> str:
    return "resnet18" if key == "name" else "'mypackage.models:build'"
