"""The sparse backend: the same training as masked-dense, the same gradient flow, and `auto`'s choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sweep.core.gradflow import measure_flow
from sweep.core.layers import MaskEnforcer, SparseLinear, choose_backend, sparse_threshold
from sweep.core.models import build_model
from sweep.core.optim import make_optimizer
from sweep.spec import ModelSpec, TrainSpec

DENSITIES = (0.05, 0.02, 0.3)


def pair(seed: int = 0) -> tuple:
    """The same MLP (same masks, same initial weights) on both backends."""
    spec = ModelSpec(widths=(120, 80), densities=DENSITIES)
    masked = build_model(ModelSpec(**{**spec.__dict__, "backend": "masked"}), (1, 8, 8), 10, seed)
    sparse = build_model(ModelSpec(**{**spec.__dict__, "backend": "sparse"}), (1, 8, 8), 10, seed)
    return masked, sparse


def test_sparse_layers_hold_only_the_active_weights():
    masked, sparse = pair()
    for m, s in zip(masked.weight_layers, sparse.weight_layers, strict=True):
        assert isinstance(s, SparseLinear) and s.backend == "sparse"
        assert s.values.numel() == s.active_weights == m.active_weights
        assert torch.equal(s.dense_weight(), m.weight.detach())
        assert torch.equal(s.dense_mask(), m.mask)
    assert sparse.total_params == masked.total_params
    assert sum(p.numel() for p in sparse.parameters()) < sum(p.numel() for p in masked.parameters()) / 5


@pytest.mark.parametrize(
    "tcfg",
    [
        TrainSpec(optimizer="momentum", lr=0.05, momentum=0.9, weight_decay=5e-4),
        TrainSpec(optimizer="adam", lr=1e-3, weight_decay=1e-4),
    ],
    ids=["sgd-momentum-wd", "adam"],
)
def test_sparse_and_masked_follow_the_same_trajectory(tcfg):
    masked, sparse = pair(seed=3)
    opt_m, opt_s = make_optimizer(masked.parameters(), tcfg), make_optimizer(sparse.parameters(), tcfg)
    enforcer = MaskEnforcer(masked.weight_layers)
    generator = torch.Generator().manual_seed(0)
    x_probe, y_probe = (
        torch.randn(256, 1, 8, 8, generator=generator),
        torch.randint(0, 10, (256,), generator=generator),
    )
    for step in range(20):
        x, y = torch.randn(64, 1, 8, 8, generator=generator), torch.randint(0, 10, (64,), generator=generator)
        losses = []
        for model, optimizer in ((masked, opt_m), (sparse, opt_s)):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if model is masked:
                enforcer.mask_gradients()
            optimizer.step()
            losses.append(loss.item())
        assert losses[1] == pytest.approx(losses[0], rel=1e-4), step
    flow_m = measure_flow(masked, x_probe, y_probe)
    flow_s = measure_flow(sparse, x_probe, y_probe)
    for name, value in flow_m.measures().items():
        assert flow_s.measures()[name] == pytest.approx(value, rel=1e-4), name
    for m, s in zip(masked.weight_layers, sparse.weight_layers, strict=True):
        torch.testing.assert_close(s.dense_weight(), m.weight.detach(), rtol=1e-4, atol=1e-6)


def test_auto_picks_the_kernel_by_density():
    model = build_model(ModelSpec(widths=(400, 400), densities=(0.01, 0.5, 0.01)), (1, 10, 10), 10, seed=0)
    assert [layer.backend for layer in model.weight_layers] == ["sparse", "masked", "sparse"]
    assert choose_backend("auto", "linear", 0.01, "cpu") == "sparse"
    assert choose_backend("auto", "linear", 0.5, "cpu") == "masked"
    assert choose_backend("sparse", "conv", 0.01, "cpu") == "masked"  # no sparse conv kernels
    assert choose_backend("masked", "linear", 0.01, "cpu") == "masked"
    assert 0.01 < sparse_threshold("cpu") < 0.5


def test_the_probe_leaves_sparse_layers_untouched():
    _, sparse = pair()
    before = [p.detach().clone() for p in sparse.parameters()]
    measure_flow(sparse, torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)))
    assert all(p.grad is None for p in sparse.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, sparse.parameters(), strict=True))
    assert all(layer._probe_weight is None for layer in sparse.weight_layers)
