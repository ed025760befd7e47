"""Weight layers behind one interface: a kernel with a fixed binary mask.

Every weight layer exposes `kind` (linear or conv), `backend` (masked or sparse), `shape`, `active_weights`,
`total_weights`, `density`, `kernel` (the trainable parameter that holds the kernel), `dense_mask()`,
`dense_weight()`, and `probing()` (what the gradient-flow probe differentiates against: the full kernel,
masked positions included).

- Masked-dense layers keep the full kernel and zero it where the mask is 0; `MaskEnforcer` keeps those
  zeros exact through training. Every peer simulates sparsity this way: a 1%-dense layer costs as much as a
  dense one.
- `SparseLinear` keeps only the active values (a 1-D parameter in CSR order) over a fixed CSR structure
  from the mask, and multiplies with sparse kernels: CSR matmul for the forward pass and the input
  gradient, `torch.sparse.sampled_addmm` for the weight gradient at the active positions only. Masked
  weights do not exist, so they are zero by construction, and every optimizer works on the values as is.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# The CSR kernels used here (CSR @ dense, sampled_addmm) are stable; torch still labels the layout beta.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class _MaskedKernel:
    """Shared by masked-dense layers: the mask buffer and the weight accounting."""

    backend = "masked"
    weight: nn.Parameter
    mask: torch.Tensor

    def _set_mask(self, mask: torch.Tensor, saved: bool = True, dtype: torch.dtype | None = None) -> None:
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"mask shape {tuple(mask.shape)} does not match weight {tuple(self.weight.shape)}"
            )
        self.register_buffer("mask", mask.to(dtype or self.weight.dtype), persistent=saved)
        self.shape = tuple(self.weight.shape)
        self.total_weights = math.prod(self.shape)
        self.active_weights = int(mask.sum().item())

    @property
    def density(self) -> float:
        return self.active_weights / self.total_weights

    @property
    def kernel(self) -> nn.Parameter:
        return self.weight

    def dense_mask(self) -> torch.Tensor:
        return self.mask

    def dense_weight(self) -> torch.Tensor:
        return self.weight

    @contextlib.contextmanager
    def probing(self) -> Iterator[torch.Tensor]:
        yield self.weight


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


class _CsrLinear(torch.autograd.Function):
    """y = x Wᵀ for a CSR kernel W (`pattern`: its and its transpose's indices), backward products sparse."""

    @staticmethod
    def forward(ctx, x, values, pattern, shape):
        crow, col, _, _, _ = pattern
        ctx.save_for_backward(x, values, *pattern)
        ctx.shape = shape
        weight = torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
        return torch.sparse.mm(weight, x.t()).t()

    @staticmethod
    def backward(ctx, grad_out):
        x, values, crow, col, crow_t, col_t, order_t = ctx.saved_tensors
        out_features, in_features = ctx.shape
        grad_x = grad_values = None
        if ctx.needs_input_grad[0]:  # dL/dx = grad_out W, computed as (Wᵀ grad_outᵀ)ᵀ with Wᵀ in CSR
            weight_t = torch.sparse_csr_tensor(
                crow_t, col_t, values[order_t], (in_features, out_features), check_invariants=False
            )
            grad_x = torch.sparse.mm(weight_t, grad_out.t()).t()
        if ctx.needs_input_grad[1]:  # dL/dW = grad_outᵀ x, at the active positions only
            pattern = torch.sparse_csr_tensor(
                crow, col, torch.zeros_like(values), ctx.shape, check_invariants=False
            )
            grad_values = torch.sparse.sampled_addmm(pattern, grad_out.t(), x, beta=0.0).values()
        return grad_x, grad_values, None, None


class SparseLinear(nn.Module):
    """A linear layer that stores and trains its active weights only, as the values of a CSR matrix."""

    kind = "linear"
    backend = "sparse"

    def __init__(self, weight: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        out_features, in_features = self.shape = tuple(weight.shape)
        rows, cols = mask.nonzero(as_tuple=True)  # row-major: the CSR order
        self.total_weights = out_features * in_features
        self.active_weights = len(rows)
        self.values = nn.Parameter(weight.detach()[rows, cols].clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        order_t = torch.argsort(cols * out_features + rows)  # the same values in the transpose's CSR order
        self.register_buffer("crow", _crow(rows, out_features))
        self.register_buffer("col", cols.clone())
        self.register_buffer("crow_t", _crow(cols[order_t], in_features))
        self.register_buffer("col_t", rows[order_t].clone())
        self.register_buffer("order_t", order_t)
        self._probe_weight: torch.Tensor | None = None

    @property
    def density(self) -> float:
        return self.active_weights / self.total_weights

    @property
    def kernel(self) -> nn.Parameter:
        return self.values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._probe_weight is not None:
            return F.linear(x, self._probe_weight, self.bias)
        pattern = (self.crow, self.col, self.crow_t, self.col_t, self.order_t)
        y = _CsrLinear.apply(x, self.values, pattern, self.shape)
        return y + self.bias if self.bias is not None else y

    def _csr(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def dense_mask(self) -> torch.Tensor:
        return self._csr(torch.ones_like(self.values.detach())).to_dense()

    def dense_weight(self) -> torch.Tensor:
        return self._csr(self.values.detach()).to_dense()

    @contextlib.contextmanager
    def probing(self) -> Iterator[torch.Tensor]:
        """Run the forward pass on a dense copy of the kernel, so autograd gives the full gradient."""
        self._probe_weight = self.dense_weight().requires_grad_()
        try:
            yield self._probe_weight
        finally:
            self._probe_weight = None


def _crow(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointers for sorted row indices."""
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


# Below these densities a linear layer trains faster on sparse kernels than masked-dense (a 3076x3076 layer,
# batch 128; `sweep bench` measures this machine's own and records it in the calibration file).
DEFAULT_THRESHOLDS = {"cpu": 0.2, "cuda": 0.02}


def calibration_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "sparse-sweep" / "calibration.json"


@functools.cache
def sparse_threshold(device_type: str) -> float:
    """The density below which `backend: auto` puts a linear layer on sparse kernels."""
    try:
        calibrated = json.loads(calibration_path().read_text())
        return float(calibrated[device_type]["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_THRESHOLDS.get(device_type, DEFAULT_THRESHOLDS["cuda"])


def choose_backend(requested: str, kind: str, density: float, device_type: str) -> str:
    """masked or sparse for one layer. Conv layers stay masked: there are no sparse conv kernels here."""
    if kind != "linear" or requested == "masked":
        return "masked"
    if requested == "sparse":
        return "sparse"
    return "sparse" if density < sparse_threshold(device_type) else "masked"


def to_sparse(layer: MaskedLinear) -> SparseLinear:
    """The same layer, same values, on the sparse backend."""
    return SparseLinear(layer.weight, layer.mask, layer.bias)


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
    zero. One fused multiply per step covers all layers. `mask_weights` sets every masked weight to exactly
    zero; the trainer calls it once per epoch as a safety net, which is much cheaper than once per step. It
    fills rather than multiplies: a non-finite gradient (a bf16 step that overflowed) leaves NaN or inf at a
    masked position through the multiply, and NaN × 0 is NaN.
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
        for weight, mask in zip(self._weights, self._masks, strict=True):
            weight.masked_fill_(mask == 0, 0.0)
