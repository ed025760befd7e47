"""A trial stopped after any epoch and continued from its captured state ends as if it had never stopped."""

from __future__ import annotations

import pytest
import torch

from sweep.core.checkpoint import load_state, save_state
from sweep.core.train import train_trial
from sweep.spec import config_to_dict, parse_trial


class Stop(Exception):
    """Stands for a lost node: the trial dies right after its report."""


def config(**train):
    return parse_trial(
        {
            "dataset": {"name": "synthetic"},
            "model": {"widths": [32, 16], "densities": [0.5, 0.05, 1.0], "dropout": 0.2, "batchnorm": True},
            "train": {"epochs": 6, "batch_size": 64, "optimizer": "momentum", "lr": 0.05, **train},
            "egf": {"samples": 128},
        }
    )


@pytest.mark.parametrize(
    ("train", "stop_after"),
    [
        ({}, 1),
        ({"optimizer": "adam", "lr": 0.01, "schedule": "step", "step_size": 2, "augment": "flip_crop"}, 3),
        ({"optimizer": "rmsprop", "lr": 0.001, "weight_decay": 1e-4, "schedule": "cosine"}, 5),
    ],
)
def test_resumed_trial_equals_the_uninterrupted_one(synthetic, tmp_path, train, stop_after):
    cfg = config(**train)
    full = train_trial(cfg, data=synthetic)
    saved = {}

    def stop(report, facts):
        if report.epoch == stop_after:
            save_state(report.capture(), tmp_path)  # through the file, as a checkpoint travels
            saved["backends"] = [layer["backend"] for layer in facts.layers]
            raise Stop

    torch.manual_seed(12345)  # whatever the new process's random state is, the state overrides it
    with pytest.raises(Stop):
        train_trial(cfg, data=synthetic, on_epoch=stop)
    assert "sparse" in saved["backends"]  # the 5%-dense hidden layer trains on sparse kernels
    resumed = train_trial(cfg, data=synthetic, resume=load_state(tmp_path))
    assert [r.epoch for r in resumed.epochs] == list(range(stop_after + 1, 7))
    for mine, theirs in zip(resumed.epochs, full.epochs[stop_after + 1 :], strict=True):
        for key in (
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "val_acc",
            "egf1",
            "egf2",
            "gf2",
            "lr",
        ):
            assert mine.metrics[key] == theirs.metrics[key], (mine.epoch, key)
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_masks_travel_as_booleans_and_come_back_exact(synthetic, tmp_path):
    captured = {}
    cfg = config(epochs=1)
    outcome = train_trial(
        cfg, data=synthetic, on_epoch=lambda r, f: captured.setdefault(r.epoch, r.capture())
    )
    state = captured[1]
    masks = {name: value for name, value in state["model"].items() if name.endswith("mask")}
    assert masks and all(value.dtype == torch.bool for value in masks.values())
    for name, value in outcome.model.state_dict().items():
        if name in masks:
            assert torch.equal(value, masks[name].to(value.dtype))


@pytest.mark.parametrize(
    ("sparsity", "stop_after"),
    [
        ({"method": "rigl", "update_every": 7}, 2),
        ({"method": "set", "update_every": 7}, 3),
        ({"method": "gmp", "update_every": 5, "prune_start": 0.0}, 2),
        ({"method": "imp", "levels": 2, "rewind_epoch": 1}, 7),  # in level 1 of 0..2
        ({"method": "synflow", "scope": "global", "synflow_rounds": 5}, 2),
    ],
)
def test_resumed_trial_with_a_mask_method_equals_the_uninterrupted_one(
    synthetic, tmp_path, sparsity, stop_after
):
    raw = config_to_dict(config())
    cfg = parse_trial({**raw, "model": {**raw["model"], "densities": [0.5, 0.1, 1.0]}, "sparsity": sparsity})
    full = train_trial(cfg, data=synthetic)

    def stop(report, facts):
        if report.epoch == stop_after:
            save_state(report.capture(), tmp_path)
            raise Stop

    with pytest.raises(Stop):
        train_trial(cfg, data=synthetic, on_epoch=stop)
    resumed = train_trial(cfg, data=synthetic, resume=load_state(tmp_path))
    assert resumed.epochs[-1].epoch == full.epochs[-1].epoch
    for mine, theirs in zip(resumed.epochs, full.epochs[stop_after + 1 :], strict=True):
        assert mine.metrics == {
            **theirs.metrics,
            "seconds": mine.metrics["seconds"],
            "samples_per_s": mine.metrics["samples_per_s"],
        }
        assert [r["mask_changed"] for r in mine.layers] == [r["mask_changed"] for r in theirs.layers]
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
