"""The trainer on real data: it learns, is deterministic, reports every epoch; divergence is a status."""

from __future__ import annotations

import math

import pytest
import torch

from sweep.core.numerics import flush_subnormals
from sweep.core.train import train_trial
from sweep.engine.recorder import summary_epochs
from sweep.spec import ACTIVATIONS, parse_trial


def config(**sections):
    raw = {
        "dataset": {"name": "synthetic"},
        "model": {"widths": [32], "densities": 0.5},
        "train": {"epochs": 1, "batch_size": 64, "lr": 0.05},
        "egf": {"samples": 256},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_trial(raw)


def test_two_epochs_on_fashion_mnist_beat_chance(fashion):
    cfg = config(
        dataset={"name": "fashion_mnist", "subset": 12000, "test_subset": 2000},
        model={"widths": [300, 100], "densities": 0.1},
        train={"optimizer": "momentum", "epochs": 2, "lr": 0.05},
    )
    reports = []
    outcome = train_trial(cfg, data=fashion, on_epoch=lambda report, facts: reports.append(report))
    assert outcome.status == "done"
    assert [r.epoch for r in reports] == [0, 1, 2]
    assert reports[0].metrics["test_acc"] < 0.3  # the untrained net
    assert reports[-1].metrics["test_acc"] > 0.75  # chance is 0.10
    assert reports[0].metrics["train_loss"] is None
    assert all(r.metrics["egf"] > 0 and r.metrics["gf2"] > 0 for r in reports)
    assert outcome.facts.active_weights == round(0.1 * 784 * 300) + round(0.1 * 300 * 100) + round(
        0.1 * 100 * 10
    )


def test_huge_learning_rate_diverges(synthetic):
    outcome = train_trial(config(train={"lr": 1e6, "epochs": 5, "optimizer": "momentum"}), data=synthetic)
    assert outcome.status == "diverged"
    assert len(outcome.epochs) < 6
    assert not math.isfinite(outcome.epochs[-1].metrics["train_loss"])


def test_a_trial_computes_with_subnormals_flushed(synthetic):
    """Subnormal floats (below 1.2e-38) would slow every CPU matmul that meets them; a trial flushes them."""
    flush_subnormals(False)
    tiny = torch.tensor([1e-30])
    assert (tiny * 1e-10).item() != 0.0  # 1e-40 is subnormal: kept as it is before the trial
    cfg = config(train={"optimizer": "rmsprop", "lr": 0.001, "weight_decay": 5e-4}, model={"batchnorm": True})
    assert train_trial(cfg, data=synthetic).status == "done"
    assert (tiny * 1e-10).item() == 0.0


def test_deterministic_for_a_seed(synthetic):
    cfg = config(model={"widths": [32, 16], "dropout": 0.2, "batchnorm": True}, train={"epochs": 2})
    a, b = (train_trial(cfg, data=synthetic) for _ in range(2))
    for ra, rb in zip(a.epochs, b.epochs, strict=True):
        for key in ("train_loss", "test_acc", "test_loss", "egf1", "gf2"):
            assert ra.metrics[key] == rb.metrics[key], key
    other = train_trial(
        config(model={"widths": [32, 16], "dropout": 0.2, "batchnorm": True}, train={"epochs": 2, "seed": 1}),
        data=synthetic,
    )
    assert other.epochs[-1].metrics["train_loss"] != a.epochs[-1].metrics["train_loss"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_trains(synthetic, activation):
    outcome = train_trial(
        config(model={"activation": activation}, train={"optimizer": "adam", "lr": 0.01}), data=synthetic
    )
    assert outcome.status == "done" and outcome.epochs[-1].metrics["test_acc"] > 0.2


def test_cnn_with_batchnorm_skip_dropout_and_augmentation(synthetic):
    cfg = config(
        model={
            "family": "cnn",
            "widths": [8, 8],
            "batchnorm": True,
            "skip": True,
            "dropout": 0.1,
            "mask": "erk",
            "densities": 0.3,
        },
        train={"optimizer": "adam", "lr": 0.01, "augment": "flip_crop", "epochs": 2},
    )
    outcome = train_trial(cfg, data=synthetic)
    assert outcome.status == "done"
    assert [layer["kind"] for layer in outcome.facts.layers] == ["conv", "conv", "linear"]
    assert outcome.epochs[-1].metrics["test_acc"] > 0.2


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("none", [0.1, 0.1, 0.1, 0.1]),
        ("step", [0.1, 0.1, 0.01, 0.01]),
        (
            "cosine",
            [0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 + math.cos(3 * math.pi / 4)) / 2],
        ),
    ],
)
def test_lr_schedules(synthetic, schedule, expected):
    cfg = config(train={"schedule": schedule, "lr": 0.1, "epochs": 4, "step_size": 2})
    outcome = train_trial(cfg, data=synthetic)
    lrs = [r.metrics["lr"] for r in outcome.epochs[1:]]
    assert lrs == pytest.approx(expected)


def test_summary_epochs_are_eleven_spread_evenly():
    assert summary_epochs(3) == [0, 1, 2, 3]
    assert summary_epochs(20) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert len(summary_epochs(500)) == 11 and summary_epochs(500)[-1] == 500
