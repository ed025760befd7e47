"""Weight layers behind one interface: a kernel with a fixed binary mask.

Every weight layer exposes `kind` (linear or conv), `backend`, `shape`, `active_weights`, `total_weights`,
`density` and `mask` (a float tensor of the kernel's shape). Masked-dense layers keep the full kernel and
zero it where the mask is 0; `MaskEnforcer` keeps those zeros exact through training.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _MaskedKernel:
    """Shared by masked-dense layers: the mask buffer and the weight accounting."""

    backend = "masked"
    weight: nn.Parameter
    mask: torch.Tensor

    def _set_mask(self, mask: torch.Tensor) -> None:
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match weight {tuple(self.weight.shape)}"
            )
        self.register_buffer("mask", mask.to(self.weight.dtype))
        self.shape = tuple(self.weight.shape)
        self.total_weights = math.prod(self.shape)
        self.active_weights = int(mask.sum().item())

    @property
    def density(self) -> float:
        return self.active_weights / self.total_weights

    def dense_weight(self) -> torch.Tensor:
        return self.weight


class MaskedLinear(_MaskedKernel, nn.Linear):
    kind = "linear"

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        self._set_mask(mask)


class MaskedConv2d(_MaskedKernel, nn.Conv2d):
    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: torch.Tensor) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self._set_mask(mask)


def init_layer_(layer: nn.Module, method: str, fan_in: int, fan_out: int, generator: torch.Generator) -> None:
    """Draw the kernel from `method` with the given fans (those of a reference layer), then apply the mask.

    `kaiming_uniform` is PyTorch's default for Linear and Conv: U(±1/sqrt(fan_in)). Biases follow PyTorch's
    default, U(±1/sqrt(fan_in)), with the same reference fan-in.
    """
    weight = layer.dense_weight()
    with torch.no_grad():
        if method == "kaiming_uniform":
            bound = 1.0 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound, generator=generator)
        elif method == "kaiming_normal":
            weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
        elif method == "xavier_uniform":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weight.uniform_(-bound, bound, generator=generator)
        else:
            raise ValueError(f"unknown init {method!r}")
        weight.mul_(layer.mask)
        if layer.bias is not None:
            bound = 1.0 / math.sqrt(fan_in)
            layer.bias.uniform_(-bound, bound, generator=generator)


class MaskEnforcer:
    """Keeps masked weights exactly zero by masking the gradients before every optimizer step.

    A masked weight starts at 0.0 and its gradient is 0.0, so momentum, Adam and RMSProp moments, Adagrad
    sums and weight decay (coupled or decoupled) all leave it at exactly 0.0: every update is a product with
    zero. One fused multiply per step covers all layers. `mask_weights` re-applies the masks to the weights;
    the trainer calls it once per epoch as a safety net (it changes nothing unless a non-finite value crept
    in), which is much cheaper than once per step.
    """

    def __init__(self, layers: list[nn.Module]) -> None:
        masked = [layer for layer in layers if layer.backend == "masked"]
        self._weights = [layer.weight for layer in masked]
        self._masks = [layer.mask for layer in masked]

    def mask_gradients(self) -> None:
        if self._weights:
            torch._foreach_mul_([w.grad for w in self._weights], self._masks)

    @torch.no_grad()
    def mask_weights(self) -> None:
        if self._weights:
            torch._foreach_mul_(self._weights, self._masks)
