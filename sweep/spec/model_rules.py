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
from sweep.spec.choices import BUILT_IN
from sweep.spec.schema import GridSpec, ModelSpec

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
    if isinstance(model.densities, dict):
        raise SpecError(
            f"{path}.densities: a mapping of module patterns applies to the families wrn, torchvision, timm "
            f"and factory; family {model.family} takes one number or one per layer"
        )
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
    if model.mask == "erk" and not isinstance(model.densities, float):
        raise SpecError(f"{path}.densities: mask erk takes one overall density, got {model.densities!r}")


def check_family_kind(kind: str, model: ModelSpec, grid: GridSpec | None) -> None:
    """SC-SDC's per-layer pairs and a grid's dense references scale the widths of the project's own
    families; another family's SC-SDC pairs match the total (`grid.match: total`) by `model.width_key`."""
    if model.family in BUILT_IN:
        return
    if grid is not None and grid.dense_reference:
        raise SpecError(
            f"grid.dense_reference: scales the widths of the families mlp and cnn; a {model.family} model "
            "has none to scale"
        )
    if kind == "sc_sdc" and grid is not None and grid.match != "total":
        raise SpecError(
            f"grid.match: layer pairs each layer with a narrower dense one, which only the families mlp and "
            f"cnn allow; a {model.family} model takes match: total (with model.width_key)"
        )
    if kind == "sc_sdc" and model.width_key is None:
        raise SpecError(
            f"model.width_key: SC-SDC with match: total scales a {model.family} model's width; name the "
            "knob, for example kwargs.widen_factor or kwargs.width_per_group"
        )


def _example(key: str) -> str:
    return "resnet18" if key == "name" else "'mypackage.models:build'"
