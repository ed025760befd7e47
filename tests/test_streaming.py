"""Data larger than the memory budget streams to the device through a DataLoader, and a trial's numbers are
the same as with the data held in memory (forced here by a budget of 0 GiB)."""

from __future__ import annotations

import pytest
import torch

from sweep.core.data import load_arrays, make_splits
from sweep.core.streaming import BUDGET_SETTING, StreamedSplit
from sweep.core.train import train_trial
from sweep.spec import parse_trial
from sweep.store import ResultsStore

from .conftest import write_spec

TRIAL = {
    "dataset": {"name": "synthetic", "subset": 256, "test_subset": 100},
    "model": {"family": "cnn", "widths": [8, 8], "densities": 0.3},
    "train": {"epochs": 2, "batch_size": 32, "augment": "flip_crop", "optimizer": "momentum", "lr": 0.05},
    "egf": {"samples": 40},
    "sparsity": {"method": "snip"},
}


def untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("seconds", "samples_per_s")}


def test_a_streamed_trial_trains_exactly_as_one_held_in_memory(monkeypatch):
    config = parse_trial(TRIAL)
    held = train_trial(config)
    monkeypatch.setenv(BUDGET_SETTING, "0")
    splits = make_splits(load_arrays(config.dataset), config.dataset, seed=0)
    assert isinstance(splits.train, StreamedSplit) and isinstance(splits.test, StreamedSplit)
    assert splits.train.images.dtype == torch.uint8  # held as bytes, normalised batch by batch
    streamed = train_trial(config)
    assert [untimed(e.metrics) for e in streamed.epochs] == [untimed(e.metrics) for e in held.epochs]
    for a, b in zip(held.model.weight_layers, streamed.model.weight_layers, strict=True):
        assert torch.equal(a.weight, b.weight)


def test_sweep_train_streams_under_a_small_budget_and_refuses_a_bad_one(cli, tmp_path, monkeypatch):
    spec = write_spec(
        tmp_path / "s.yaml",
        "name: streamed\nkind: single\ndataset: {name: synthetic, subset: 128}\nmodel: {widths: [16]}\n"
        "train: {epochs: 1, batch_size: 32}\negf: {samples: 32}\n",
    )
    monkeypatch.setenv(BUDGET_SETTING, "0.000001")  # about a kilobyte: far less than the data
    assert cli("train", str(spec), "--results", str(tmp_path / "r")).code == 0
    (row,) = ResultsStore(tmp_path / "r").rows("trials", "streamed")
    assert row["status"] == "done"
    monkeypatch.setenv(BUDGET_SETTING, "lots")
    bad = cli("train", str(spec), "--results", str(tmp_path / "r2"))
    assert bad.code == 2 and f"{BUDGET_SETTING}='lots': give the data budget in GiB" in bad.err


@pytest.mark.parametrize("size", [1, 31, 32, 100])
def test_streamed_batches_cover_the_order_once(monkeypatch, size):
    monkeypatch.setenv(BUDGET_SETTING, "0")
    config = parse_trial(TRIAL)
    splits = make_splits(load_arrays(config.dataset), config.dataset, seed=1)
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(3))
    labels = torch.cat([y for _, y in splits.train.batches(order, size)])
    assert torch.equal(labels, splits.train.y[order])
