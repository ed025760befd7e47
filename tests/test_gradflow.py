"""EGF and the baselines: hand-checked values, the dense identity, and no side effect on training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sweep.core.gradflow import flow_from_gradients, measure_flow
from sweep.core.models import build_model
from sweep.spec import ModelSpec


def test_measures_equal_hand_computed_values():
    g1 = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    m1 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    g2 = torch.tensor([[4.0, -4.0]])
    m2 = torch.tensor([[0.0, 1.0]])
    flow = flow_from_gradients([g1, g2], [m1, m2])
    # layer 1 over its active weights: |1| + |3| + |0| = 4 and sqrt(1 + 9); layer 2: |-4| = 4 and 4
    assert flow.egf1 == pytest.approx((4 + 4) / 2)
    assert flow.egf2 == pytest.approx((math.sqrt(10) + 4) / 2)
    assert flow.egf == flow.egf2
    assert flow.egf1_pw == pytest.approx((4 / 3 + 4 / 1) / 2)
    assert flow.egf2_pw == pytest.approx((math.sqrt(10) / 3 + 4 / 1) / 2)
    # the baselines take every kernel entry, masked or not
    assert flow.gf1 == pytest.approx(1 + 2 + 3 + 0 + 4 + 4)
    assert flow.gf2 == pytest.approx(math.sqrt(1 + 4 + 9 + 0 + 16 + 16))
    assert [layer.active_weights for layer in flow.layers] == [3, 1]


def test_measure_flow_matches_autograd_on_the_whole_probe_set():
    model = build_model(ModelSpec(widths=(12, 6), densities=0.5, backend="masked"), (1, 4, 4), 5, seed=2)
    x, y = torch.randn(300, 1, 4, 4), torch.randint(0, 5, (300,))
    flow = measure_flow(model, x, y, chunk_size=64)  # several chunks, one mean loss
    model.eval()
    kernels = [layer.weight for layer in model.weight_layers]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), kernels)
    expected = [(g * layer.mask).norm().item() for g, layer in zip(grads, model.weight_layers, strict=True)]
    assert flow.egf2 == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert flow.gf2 == pytest.approx(math.sqrt(sum(g.norm().item() ** 2 for g in grads)), rel=1e-5)


def test_dense_egf1_is_gf1_over_layers():
    model = build_model(ModelSpec(widths=(16, 16, 16), mask="dense"), (1, 5, 5), 4, seed=0)
    flow = measure_flow(model, torch.randn(128, 1, 5, 5), torch.randint(0, 4, (128,)))
    assert flow.egf1 == pytest.approx(flow.gf1 / 4, rel=1e-6)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_probe_has_no_side_effect(mode):
    model = build_model(
        ModelSpec(widths=(16,), densities=0.5, batchnorm=True, dropout=0.3), (1, 4, 4), 3, seed=0
    )
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    rng_before = torch.random.get_rng_state()
    measure_flow(model, x, y, mode=mode)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_sparse_flow_differs_from_the_baseline():
    """EGF counts active weights only, so it is below the unmasked norm for a sparse net."""
    model = build_model(ModelSpec(widths=(32,), densities=0.1), (1, 6, 6), 10, seed=0)
    flow = measure_flow(model, torch.randn(256, 1, 6, 6), torch.randint(0, 10, (256,)))
    for layer in flow.layers:
        assert layer.g_masked_l2 < layer.g_l2
        assert layer.g_masked_l1 < layer.g_l1
