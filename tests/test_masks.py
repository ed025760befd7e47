"""Masks: exact counts, ERK's overall density, exact zeros through every optimizer, dense = plain torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sweep.core.layers import MaskEnforcer
from sweep.core.masks import active_count, erk_densities
from sweep.core.models import build_model, weight_shapes
from sweep.core.optim import make_optimizer
from sweep.core.train import train_trial
from sweep.spec import OPTIMIZERS, ModelSpec, TrainSpec, parse_trial

widths = st.lists(st.integers(1, 40), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None)
@given(
    widths=widths,
    density=st.floats(0.05, 1.0),
    family=st.sampled_from(["mlp", "cnn"]),
    seed=st.integers(0, 99),
)
def test_uniform_masks_have_exact_counts(widths, density, family, seed):
    spec = ModelSpec(family=family, widths=tuple(widths), densities=density)
    try:
        model = build_model(spec, (1, 8, 8), 10, seed)
    except Exception as exc:  # a layer too small to keep a weight is a clear SpecError
        assert "keeps no weight" in str(exc)
        return
    for layer in model.weight_layers:
        mask, weight = layer.dense_mask(), layer.dense_weight()  # whichever backend `auto` chose
        assert int(mask.sum()) == active_count(density, math.prod(layer.shape)) == layer.active_weights
        assert int((weight != 0).sum()) <= layer.active_weights
        assert torch.all(weight[mask == 0] == 0)


@settings(max_examples=25, deadline=None)
@given(widths=widths, density=st.floats(0.02, 0.9), family=st.sampled_from(["mlp", "cnn"]))
def test_erk_hits_the_overall_density(widths, density, family):
    spec = ModelSpec(family=family, widths=tuple(widths), mask="erk", densities=density)
    shapes = weight_shapes(spec, (1, 8, 8), 10)
    densities = erk_densities(density, shapes)
    sizes = [math.prod(s) for s in shapes]
    assert all(0 < d <= 1.0 + 1e-12 for d in densities)
    achieved = sum(d * n for d, n in zip(densities, sizes, strict=True)) / sum(sizes)
    assert achieved == pytest.approx(min(density, 1.0), rel=1e-9)
    # ERK gives small layers (larger (fan_in+fan_out)/(fan_in·fan_out)) higher density, unless capped
    uncapped = [(sum(s) / math.prod(s), d) for s, d in zip(shapes, densities, strict=True) if d < 1.0]
    assert [d for _, d in sorted(uncapped)] == sorted(d for _, d in uncapped)


def test_erk_model_counts_are_exact_per_layer():
    spec = ModelSpec(widths=(300, 100), mask="erk", densities=0.1)
    model = build_model(spec, (1, 28, 28), 10, seed=0)
    for layer in model.weight_layers:
        assert layer.active_weights == active_count(layer.density, layer.total_weights)
    assert model.active_weights / model.total_weights == pytest.approx(0.1, abs=1e-4)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_masked_weights_stay_exactly_zero(synthetic, optimizer):
    """50 steps of each optimizer, with momentum (where it applies) and weight decay."""
    config = parse_trial(
        {
            "dataset": {"name": "synthetic", "val_fraction": 0.1},
            "model": {"widths": [32, 32], "densities": 0.3, "batchnorm": True, "backend": "masked"},
            "train": {
                "optimizer": optimizer,
                "lr": 0.05 if optimizer in ("sgd", "momentum", "adagrad") else 0.01,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 0.01,
                "epochs": 1,
                "batch_size": 36,
            },
        }
    )
    outcome = train_trial(config, data=synthetic)
    model = outcome.model
    assert outcome.status == "done"
    for layer in model.weight_layers:
        hidden = layer.mask == 0
        assert torch.count_nonzero(layer.weight[hidden]) == 0
        assert (
            torch.count_nonzero(layer.weight[~hidden]) > 0.9 * layer.active_weights
        )  # the active ones trained


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_state_never_moves_masked_weights(optimizer):
    """Masked weights are exactly zero after every step, and momentum buffers and Adam moments never hold
    anything at masked positions (the paper's trap), with weight decay on and only gradients masked."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(widths=(20,), densities=0.2, backend="masked"), (1, 4, 4), 3, seed=1)
    opt = make_optimizer(
        model.parameters(), TrainSpec(optimizer=optimizer, lr=0.01, weight_decay=0.1, momentum=0.9)
    )
    enforcer = MaskEnforcer(model.weight_layers)
    x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    for _ in range(50):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        enforcer.mask_gradients()
        opt.step()
        for layer in model.weight_layers:
            assert torch.count_nonzero(layer.weight[layer.mask == 0]) == 0
    for layer in model.weight_layers:
        hidden = layer.mask == 0
        for name, value in opt.state[layer.weight].items():
            if torch.is_tensor(value) and value.shape == layer.weight.shape:
                assert torch.count_nonzero(value[hidden]) == 0, name


def test_dense_matches_plain_torch_step_for_step():
    spec = ModelSpec(widths=(64, 32), mask="dense", activation="relu")
    ours = build_model(spec, (1, 8, 8), 10, seed=3)
    plain = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    with torch.no_grad():
        for mine, theirs in zip(ours.weight_layers, [plain[1], plain[3], plain[5]], strict=True):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    tcfg = TrainSpec(optimizer="momentum", lr=0.05, weight_decay=1e-3)
    opt_ours, opt_plain = make_optimizer(ours.parameters(), tcfg), make_optimizer(plain.parameters(), tcfg)
    enforcer = MaskEnforcer(ours.weight_layers)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        x, y = torch.randn(32, 1, 8, 8, generator=generator), torch.randint(0, 10, (32,), generator=generator)
        loss_ours = F.cross_entropy(ours(x), y)
        opt_ours.zero_grad()
        loss_ours.backward()
        enforcer.mask_gradients()
        opt_ours.step()
        enforcer.mask_weights()
        loss_plain = F.cross_entropy(plain(x), y)
        opt_plain.zero_grad()
        loss_plain.backward()
        opt_plain.step()
        assert loss_ours.item() == loss_plain.item()
    for mine, theirs in zip(ours.weight_layers, [plain[1], plain[3], plain[5]], strict=True):
        assert torch.equal(mine.weight, theirs.weight)


def test_masks_depend_on_the_seed_only():
    spec = ModelSpec(widths=(50,), densities=0.2)
    a, b, c = (build_model(spec, (1, 6, 6), 10, seed=s) for s in (7, 7, 8))
    first = [model.weight_layers[0] for model in (a, b, c)]
    assert torch.equal(first[0].dense_mask(), first[1].dense_mask())
    assert not torch.equal(first[0].dense_mask(), first[2].dense_mask())
    assert torch.equal(first[0].dense_weight(), first[1].dense_weight())


def test_init_widths_draws_from_the_reference_distribution():
    """SC-SDC: a wide sparse layer's active weights come from the narrow dense layer's fan-in."""
    torch.manual_seed(0)
    wide = ModelSpec(widths=(400, 400), densities=(0.25, 0.0625, 0.25), init_widths=(100, 100))
    model = build_model(wide, (1, 8, 8), 10, seed=0)
    hidden = model.weight_layers[1]
    active = hidden.dense_weight()[hidden.dense_mask() == 1]
    assert active.abs().max() <= 1 / math.sqrt(100) + 1e-7
    assert active.abs().max() > 0.9 / math.sqrt(100)  # not the wide layer's 1/sqrt(400)
    assert hidden.active_weights == 100 * 100
