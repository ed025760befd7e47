"""Models beyond the project's MLP and CNN: a torchvision or timm builder by name, the user's own factory
(`package.module:function`), or the project's CIFAR Wide ResNet (`family: wrn`).

`build_network` builds the plain model (its own initialisation, drawn from the seed); `layer_shapes` lists its
maskable layers without allocating a weight (the model is built on the meta device and run once on a meta
batch, which also checks that it takes the data's images and gives `num_classes` outputs). Every mistake is
one `SpecError` naming the field and what exists. No pretrained weight is fetched unless kwargs ask.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Sequence

import torch
from torch import nn

from sweep.core.masked_model import dense_by_pattern, kernel_shape, maskable_layers
from sweep.core.wrn import WideResNet
from sweep.errors import SpecError, first_line
from sweep.spec import ModelSpec, config_to_dict
from sweep.spec.convert import build_dataclass
from sweep.spec.factory_source import factory_function

Builder = Callable[[], nn.Module]


def build_network(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """The plain model the spec names, for images of `input_shape` (C, H, W) and `num_classes` classes."""
    builder = _builder(spec, tuple(input_shape), num_classes)
    try:
        return builder()
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"model.kwargs: {_what(spec)} does not take {dict(spec.kwargs)}: {first_line(exc)}"
        ) from None


def layer_shapes(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[tuple[int, ...]]:
    """The kernel shapes of the model's maskable layers, in order (checked on the meta device)."""
    return [shape for _, shape in described_layers(spec, tuple(input_shape), num_classes)]


def layer_names(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[str]:
    return [name for name, _ in described_layers(spec, tuple(input_shape), num_classes)]


def dense_flags(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[bool]:
    """Which maskable layers `model.dense_layers` keeps dense."""
    names = layer_names(spec, input_shape, num_classes)
    try:
        return dense_by_pattern(names, spec.dense_layers)
    except ValueError as exc:
        raise SpecError(f"model.dense_layers: {exc}") from None


def described_layers(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(module name, kernel shape) of every maskable layer, in order."""
    return _described(json.dumps(config_to_dict(spec), sort_keys=True), input_shape, num_classes)


@functools.cache
def _described(
    spec_json: str, input_shape: tuple[int, ...], num_classes: int
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    spec = build_dataclass(ModelSpec, json.loads(spec_json), "model")
    with torch.device("meta"):
        net = build_network(spec, input_shape, num_classes)
        found = tuple((name, kernel_shape(module)) for name, module in maskable_layers(net))
        if not found:
            raise SpecError(f"model: {_what(spec)} has no linear or conv layer to mask")
        try:
            out = net.eval()(torch.empty((2, *input_shape)))
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise SpecError(
                f"model: {_what(spec)} does not take the data's images of shape {list(input_shape)} "
                f"(channels, height, width): {first_line(exc)}"
            ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise SpecError(
            f"model: {_what(spec)} gives outputs of shape {shape} for a batch of 2; the data has "
            f"{num_classes} classes, so it must give [2, {num_classes}] (set its number of classes from "
            "num_classes)"
        )
    return found


def _builder(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> Builder:
    kwargs = dict(spec.kwargs)
    if spec.family == "wrn":
        return lambda: WideResNet(input_shape, num_classes, **kwargs)
    if spec.family == "torchvision":
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models)
        _check_name(spec, names)
        return lambda: torchvision.models.get_model(spec.name, num_classes=num_classes, **kwargs)
    if spec.family == "timm":
        try:
            import timm
        except ImportError:
            raise SpecError(
                "model.family: timm is not installed here; pip install 'sparse-sweep[timm]'"
            ) from None
        _check_name(spec, timm.list_models())
        settings = {"pretrained": False, "num_classes": num_classes, "in_chans": input_shape[0], **kwargs}
        return lambda: timm.create_model(spec.name, **settings)
    factory = factory_function(spec.factory)
    return lambda: factory(input_shape=input_shape, num_classes=num_classes, **kwargs)


def _check_name(spec: ModelSpec, names: Sequence[str]) -> None:
    if spec.name not in names:
        close = difflib.get_close_matches(spec.name or "", names, n=3)
        hint = (
            f"; did you mean {', '.join(close)}?" if close else f"; it has {len(names)}, such as {names[0]}"
        )
        raise SpecError(f"model.name: {spec.name!r} is not a {spec.family} model{hint}")


def _what(spec: ModelSpec) -> str:
    if spec.family in ("torchvision", "timm"):
        return f"{spec.family} model {spec.name}"
    return f"factory {spec.factory}" if spec.family == "factory" else "the Wide ResNet"
