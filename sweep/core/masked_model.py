"""Any PyTorch model, masked where its layers sit.

Every `nn.Linear` and `nn.Conv1d/2d/3d` of the model (any kernel, stride, padding, dilation, groups, with or
without bias, and the subclasses libraries derive from them) becomes a masked layer in place: the module
keeps its name, its class's own `forward` and its parameters, and gains the mask as a buffer that is not part
of its `state_dict`, so `model.net.state_dict()` loads into a plain copy of the model. Masks are booleans,
one byte a weight: these models are large, and a step long beside masking the gradients. Layers that
`dense_layers` names (glob patterns of module names) keep an all-ones mask: they count in every total and
in the gradient-flow mean as layers of density 1, and no mask method changes them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from sweep.core.layers import _MaskedKernel

MASKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MASKED_CLASSES: dict[type, type] = {}


class WeightLayers:
    """What a masked network knows of its weight layers: the layers in order, their sizes, their names."""

    _weight_layers: tuple[nn.Module, ...]

    @property
    def weight_layers(self) -> list[nn.Module]:
        return list(self._weight_layers)

    @property
    def active_weights(self) -> int:
        return sum(layer.active_weights for layer in self._weight_layers)

    @property
    def total_weights(self) -> int:
        return sum(layer.total_weights for layer in self._weight_layers)

    @property
    def total_params(self) -> int:
        """Every parameter, counting each kernel at its full (dense) size."""
        kernels = {id(layer.kernel) for layer in self._weight_layers}
        others = sum(p.numel() for p in self.parameters() if id(p) not in kernels)
        return self.total_weights + others

    @property
    def layer_names(self) -> list[str]:
        """Each weight layer's module name, as `named_modules` gives it."""
        names = {id(module): name for name, module in self.named_modules()}
        return [names[id(layer)] for layer in self._weight_layers]


class MaskedModel(WeightLayers, nn.Module):
    """A model whose maskable layers are masked in place; `net` is the model itself (plain state_dict)."""

    def __init__(self, net: nn.Module, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.net = net
        self._weight_layers = tuple(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def layer_names(self) -> list[str]:
        names = {id(module): name for name, module in self.net.named_modules()}
        return [names[id(layer)] for layer in self._weight_layers]


def maskable_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every linear and conv layer of `net`, by module name, in the order `named_modules` visits them."""
    return [(name, module) for name, module in net.named_modules() if isinstance(module, MASKABLE)]


def kernel_shape(module: nn.Module) -> tuple[int, ...]:
    return tuple(module.weight.shape)


def dense_by_pattern(names: Sequence[str], patterns: Sequence[str]) -> list[bool]:
    """Which of `names` the glob `patterns` keep dense; a pattern that matches no name is a mistake."""
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise ValueError(f"{pattern!r} matches no maskable module; they are: {_shown(names)}")
    return [any(fnmatch.fnmatchcase(name, p) for p in patterns) for name in names]


def densities_by_pattern(names: Sequence[str], patterns: Mapping[str, float]) -> list[float]:
    """Each name's density: that of the longest pattern it matches (the most specific: `layer4.*` before
    `*`), whatever the mapping's order. A pattern that matches no name, or a name no pattern matches, is a
    mistake."""
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise ValueError(f"{pattern!r} matches no masked module; they are: {_shown(names)}")
    densities = []
    for name in names:
        matching = [p for p in patterns if fnmatch.fnmatchcase(name, p)]
        if not matching:
            raise ValueError(f"no pattern gives module {name!r} a density (add '*' for the rest)")
        densities.append(patterns[max(matching, key=lambda p: (len(p), p))])
    return densities


def mask_in_place(
    net: nn.Module, masks: Sequence[torch.Tensor], fixed: Sequence[bool] | None = None
) -> MaskedModel:
    """Mask every maskable layer of `net` with `masks` (one per layer, in `maskable_layers` order); the
    weights outside a mask become zero. `fixed` layers stay as they are: no mask method changes them."""
    found = maskable_layers(net)
    if len(found) != len(masks):
        raise ValueError(f"{len(masks)} masks for {len(found)} maskable layers")
    for i, ((_, module), mask) in enumerate(zip(found, masks, strict=True)):
        module.__class__ = masked_class(type(module))
        module._set_mask(mask.detach().to(module.weight.device).view_as(module.weight), False, torch.bool)
        module.fixed = bool(fixed[i]) if fixed is not None else False
        with torch.no_grad():
            module.weight.mul_(module.mask)
    return MaskedModel(net, [module for _, module in found])


def masked_class(cls: type) -> type:
    """`cls` with a fixed binary mask: its own forward, and the masked layer's interface."""
    if cls not in _MASKED_CLASSES:
        kind = "linear" if issubclass(cls, nn.Linear) else "conv"
        _MASKED_CLASSES[cls] = type(f"Masked{cls.__name__}", (_MaskedKernel, cls), {"kind": kind})
    return _MASKED_CLASSES[cls]


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
