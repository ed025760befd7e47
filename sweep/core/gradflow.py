"""Gradient flow: Effective Gradient Flow (EGF) and the baseline measures gf1 and gf2.

With `g_l` the gradient of the mean cross-entropy over the probe set with respect to layer l's kernel and
`m_l` its mask:
    gf_p          = ‖concat_l g_l‖_p                      (all kernel entries, masked or not)
    EGF_p         = (1/L) Σ_l ‖g_l ⊙ m_l‖_p                (active weights only, layers weighted equally)
    EGF_p per wt  = (1/L) Σ_l ‖g_l ⊙ m_l‖_p / ‖m_l‖_0
The probe pass leaves training untouched: it uses `torch.autograd.grad` (no `.grad` is written), eval
mode by default, and in train mode it restores the batch-norm statistics and the random state.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

MEASURES = ("egf1", "egf2", "egf", "egf1_pw", "egf2_pw", "gf1", "gf2")


@dataclass(frozen=True)
class LayerFlow:
    g_masked_l1: float
    g_masked_l2: float
    g_l1: float
    g_l2: float
    active_weights: int


@dataclass(frozen=True)
class GradientFlow:
    layers: tuple[LayerFlow, ...]

    @property
    def egf1(self) -> float:
        return _mean(layer.g_masked_l1 for layer in self.layers)

    @property
    def egf2(self) -> float:
        return _mean(layer.g_masked_l2 for layer in self.layers)

    @property
    def egf(self) -> float:
        """The headline measure: an alias of EGF_2."""
        return self.egf2

    @property
    def egf1_pw(self) -> float:
        return _mean(layer.g_masked_l1 / layer.active_weights for layer in self.layers)

    @property
    def egf2_pw(self) -> float:
        return _mean(layer.g_masked_l2 / layer.active_weights for layer in self.layers)

    @property
    def gf1(self) -> float:
        return sum(layer.g_l1 for layer in self.layers)

    @property
    def gf2(self) -> float:
        return math.sqrt(sum(layer.g_l2**2 for layer in self.layers))

    def measures(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in MEASURES}

    def layer_rows(self) -> list[dict[str, float | int]]:
        return [asdict(layer) for layer in self.layers]


def _mean(values: Iterator[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


def flow_from_gradients(grads: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> GradientFlow:
    """The measures from full kernel gradients and their masks (one device sync for all layers)."""
    stats = []
    for g, m in zip(grads, masks, strict=True):
        gm = g * m
        stats.append(torch.stack([gm.abs().sum(), gm.norm(), g.abs().sum(), g.norm(), m.count_nonzero()]))
    rows = torch.stack(stats).double().cpu().tolist()
    return GradientFlow(tuple(LayerFlow(r[0], r[1], r[2], r[3], int(r[4])) for r in rows))


def measure_flow(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str = "eval", chunk_size: int = 2048
) -> GradientFlow:
    """Gradient flow of `model` on the probe set (x, y), with no side effect on training."""
    layers = model.weight_layers
    was_training = model.training
    model.train(mode == "train")
    try:
        with _restored_state(model, enabled=mode == "train"), probe_kernels(layers) as kernels:
            total: list[torch.Tensor] | None = None
            for start in range(0, len(y), chunk_size):
                out = model(x[start : start + chunk_size])
                loss = F.cross_entropy(out, y[start : start + chunk_size], reduction="sum") / len(y)
                grads = torch.autograd.grad(loss, kernels)
                total = list(grads) if total is None else [t + g for t, g in zip(total, grads, strict=True)]
    finally:
        model.train(was_training)
    return flow_from_gradients(total, [layer.dense_mask() for layer in layers])


@contextlib.contextmanager
def probe_kernels(layers: Sequence[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """The full kernels to differentiate against: masked positions included, so gf1 and gf2 are exact.

    A sparse layer runs this one pass on a dense copy of its kernel (one dense product per layer and epoch).
    """
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(layer.probing()) for layer in layers]


@contextlib.contextmanager
def _restored_state(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Batch-norm statistics and the random state as they were before (for train-mode probes)."""
    if not enabled:
        yield
        return
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for module, state in zip(norms, saved, strict=True):
                module.load_state_dict(state)
