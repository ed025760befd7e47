"""MLP and CNN builders: widths, per-layer densities, activation, batch norm, dropout, skips.

An MLP is `len(widths)` hidden linear layers and a linear output layer. A CNN is `len(widths)` 3×3 conv
layers (widths are channels; each is followed by a 2×2 max-pool while the feature map is at least 4 wide)
and a linear output layer over the flattened features. Every linear and conv kernel is a weight layer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from sweep.core import masks, zoo
from sweep.core.layers import MaskedConv2d, MaskedLinear, choose_backend, init_layer_, to_sparse
from sweep.core.masked_model import MaskedModel, WeightLayers, densities_by_pattern, mask_in_place
from sweep.errors import SpecError
from sweep.spec import ModelSpec

KERNEL_SIZE = 3
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
}
_MASK_STREAM, _INIT_STREAM = 1, 2


def weight_shapes(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[masks.Shape]:
    """Kernel shapes of every weight layer, without building anything (another family's model is built on
    the meta device, which allocates nothing)."""
    if not spec.built_in:
        return zoo.layer_shapes(spec, input_shape, num_classes)
    channels, height, _ = input_shape
    shapes: list[masks.Shape] = []
    if spec.family == "mlp":
        fan_in = math.prod(input_shape)
        for width in spec.widths:
            shapes.append((width, fan_in))
            fan_in = width
        return [*shapes, (num_classes, fan_in)]
    size = height
    for width in spec.widths:
        shapes.append((width, channels, KERNEL_SIZE, KERNEL_SIZE))
        channels, size = width, _pooled(size)
    return [*shapes, (num_classes, channels * size * size)]


def model_densities(spec: ModelSpec, input_shape: Sequence[int], num_classes: int) -> list[float]:
    """Each weight layer's density; layers `dense_layers` names have 1, the allocation covers the rest."""
    shapes = weight_shapes(spec, input_shape, num_classes)
    fixed = [False] * len(shapes) if spec.built_in else zoo.dense_flags(spec, input_shape, num_classes)
    free = [shape for shape, dense in zip(shapes, fixed, strict=True) if not dense]
    if not free:
        raise SpecError("model.dense_layers: names every maskable layer; leave at least one to mask")
    if not spec.built_in and isinstance(spec.densities, tuple) and len(spec.densities) != len(free):
        every = zoo.layer_names(spec, input_shape, num_classes)
        names = [name for name, dense in zip(every, fixed, strict=True) if not dense]
        raise SpecError(
            f"model.densities: {len(spec.densities)} densities for the {len(free)} masked layers "
            f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}); give {len(free)} or one number"
        )
    if isinstance(spec.densities, dict):
        names = zoo.layer_names(spec, input_shape, num_classes)
        free_names = [name for name, dense in zip(names, fixed, strict=True) if not dense]
        try:
            by_name = densities_by_pattern(free_names, spec.densities)
        except ValueError as exc:
            raise SpecError(f"model.densities: {exc}") from None
        chosen = iter(masks.layer_densities(spec.mask, by_name, free))
    else:
        chosen = iter(masks.layer_densities(spec.mask, spec.densities, free))
    densities = [1.0 if dense else next(chosen) for dense in fixed]
    masks.check_counts(densities, shapes)
    return densities


def _pooled(size: int) -> int:
    return size // 2 if size >= 4 else size


class Residual(nn.Module):
    """x + f(x): a skip connection around a block whose input and output widths match."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SparseNet(WeightLayers, nn.Sequential):
    """A plain `nn.Sequential` (no per-step overhead beyond one) that knows its weight layers.

    Hidden block: weight layer → [batch norm] → activation (→ + input, with skips) → [max-pool] → [dropout];
    then the linear output layer. `weight_layers` lists every masked kernel in order.
    """

    def __init__(self, *modules: nn.Module, weight_layers: Sequence[nn.Module] = ()) -> None:
        super().__init__(*modules)
        self._weight_layers = tuple(weight_layers)  # the same modules as in the sequence, listed in order


# The public API's signature (`sweep.build_model`): it keeps its parameters.
def build_model(  # noqa: PLR0913
    spec: ModelSpec,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int,
    device_type: str = "cpu",
    layer_masks: Sequence[torch.Tensor] | None = None,
) -> SparseNet | MaskedModel:
    """Build the network with its masks and its initial weights.

    The masks are drawn from `seed` at the spec's densities, unless `layer_masks` gives them (a mask
    method's choice). The initial weights are the same whatever the masks: each kernel is drawn whole from
    `seed`, then masked. Each linear layer then goes on the backend `spec.backend` asks for (`auto`: sparse
    kernels below the density threshold of `device_type`); the weights are the same whichever backend
    holds them. Another family's model keeps its own initialisation (drawn from `seed`) and its layers are
    masked in place (`sweep.core.masked_model`).
    """
    if not spec.built_in:
        return _masked_network(spec, input_shape, num_classes, seed, layer_masks)
    shapes = weight_shapes(spec, input_shape, num_classes)
    densities = model_densities(spec, input_shape, num_classes)
    reference = spec if spec.init_widths is None else dataclasses.replace(spec, widths=spec.init_widths)
    reference_shapes = weight_shapes(reference, input_shape, num_classes)
    mask_gen = torch.Generator().manual_seed(seed * 1_000_003 + _MASK_STREAM)
    init_gen = torch.Generator().manual_seed(seed * 1_000_003 + _INIT_STREAM)

    layers = []
    for i, (shape, density) in enumerate(zip(shapes, densities, strict=True)):
        if layer_masks is None:
            mask = masks.random_mask(shape, masks.active_count(density, math.prod(shape)), mask_gen)
        else:
            mask = layer_masks[i].detach().float().cpu().view(shape)
        layer = (
            MaskedLinear(shape[1], shape[0], mask)
            if len(shape) == 2
            else MaskedConv2d(shape[1], shape[0], KERNEL_SIZE, mask)
        )
        layers.append(layer)
    for layer, ref in zip(layers, reference_shapes, strict=True):
        receptive = math.prod(ref[2:])
        init_layer_(
            layer, spec.init, fan_in=ref[1] * receptive, fan_out=ref[0] * receptive, generator=init_gen
        )

    layers = [
        to_sparse(layer)
        if choose_backend(spec.backend, layer.kind, layer.density, device_type) == "sparse"
        else layer
        for layer in layers
    ]
    conv = spec.family == "cnn"
    size = input_shape[1]
    body: list[nn.Module] = [] if conv else [nn.Flatten()]
    for layer, shape in zip(layers[:-1], shapes[:-1], strict=True):
        width, fan_in = shape[0], shape[1]
        block = [layer]
        if spec.batchnorm:
            block.append(nn.BatchNorm2d(width) if conv else nn.BatchNorm1d(width))
        block.append(ACTIVATIONS[spec.activation]())
        body += [Residual(nn.Sequential(*block))] if spec.skip and width == fan_in else block
        if conv and _pooled(size) != size:
            body.append(nn.MaxPool2d(2))
            size = _pooled(size)
        if spec.dropout > 0:
            body.append(nn.Dropout(spec.dropout))
    if conv:
        body.append(nn.Flatten())
    return SparseNet(*body, layers[-1], weight_layers=layers)


def _masked_network(
    spec: ModelSpec,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int,
    layer_masks: Sequence[torch.Tensor] | None,
) -> MaskedModel:
    """The model a family builds, initialised from `seed`, with its masks (random at the densities unless
    `layer_masks` gives them)."""
    shapes = weight_shapes(spec, input_shape, num_classes)
    fixed = zoo.dense_flags(spec, input_shape, num_classes)
    if layer_masks is None:
        densities = model_densities(spec, input_shape, num_classes)
        mask_gen = torch.Generator().manual_seed(seed * 1_000_003 + _MASK_STREAM)
        layer_masks = [
            masks.random_mask(shape, masks.active_count(density, math.prod(shape)), mask_gen)
            for shape, density in zip(shapes, densities, strict=True)
        ]
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed * 1_000_003 + _INIT_STREAM)
        net = zoo.build_network(spec, input_shape, num_classes)
    return mask_in_place(net, [m.detach().float().cpu() for m in layer_masks], fixed)
