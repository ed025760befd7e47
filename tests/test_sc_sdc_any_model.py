"""SC-SDC with total matching (`grid.match: total`): any model family is paired with the same model at a
narrower width knob, the sparse net's active weights matching the dense partner's weights (the rounding left
recorded as `capacity_mismatch`); mistakes are one line; a tiny Wide ResNet pair trains on Ray and reports."""

from __future__ import annotations

import math

import pytest
import yaml

from sweep.core.data import dataset_shape
from sweep.core.masks import active_weights
from sweep.core.models import model_densities, weight_shapes
from sweep.errors import SpecError
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.spec import parse_spec
from sweep.store import ResultsStore

from .conftest import refused_dry_run, write_spec

FACTORY = """
from torch import nn


def build(input_shape, num_classes, hidden=16):
    return nn.Sequential(
        nn.Conv2d(input_shape[0], hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(hidden * 4, num_classes),
    )
"""
WRN = {"family": "wrn", "kwargs": {"depth": 10, "widen_factor": 4}, "width_key": "kwargs.widen_factor"}


def spec(model: dict, grid: dict | None = None, **sections) -> dict:
    grid = {"match": "total", "ratios": [0.5], "seeds": [0], **(grid or {})}
    base = {"name": "total", "kind": "sc_sdc", "dataset": {"name": "synthetic"}, "model": model, "grid": grid}
    return base | sections


def pairs(raw: dict) -> dict[str, dict]:
    """The planned pairs by pair_id: role → planned trial."""
    found: dict[str, dict] = {}
    for item in sc_sdc_trials(parse_spec(raw)):
        found.setdefault(item.meta.pair_id, {})[item.meta.role] = item
    return found


def weights(config) -> tuple[int, int]:
    """(active weights, all weights) of a trial's maskable layers."""
    shape, classes = dataset_shape(config.dataset)
    shapes = weight_shapes(config.model, shape, classes)
    active = active_weights(model_densities(config.model, shape, classes), shapes)
    return active, sum(math.prod(s) for s in shapes)


def check_pair(pair: dict) -> None:
    sparse, dense = pair["sparse"], pair["dense"]
    assert sparse.meta.pair_id == dense.meta.pair_id == dense.config.key
    assert sparse.config.train.seed == dense.config.train.seed
    assert (sparse.config.model.mask, dense.config.model.mask) == ("uniform", "dense")
    sparse_active, _ = weights(sparse.config)
    dense_active, dense_total = weights(dense.config)
    assert dense_active == dense_total
    mismatch = sparse.meta.capacity_mismatch
    assert mismatch == dense.meta.capacity_mismatch
    assert sparse_active - dense_total == pytest.approx(mismatch * dense_total)
    layers = len(weight_shapes(sparse.config.model, *dataset_shape(sparse.config.dataset)))
    assert abs(sparse_active - dense_total) <= layers / 2  # only each layer's rounding to whole weights


def test_a_wide_resnet_pairs_with_half_its_widen_factor():
    (pair,) = pairs(spec({**WRN, "dense_layers": ["stem"]})).values()
    assert pair["sparse"].config.model.kwargs == {"depth": 10, "widen_factor": 4}
    assert pair["dense"].config.model.kwargs == {"depth": 10, "widen_factor": 2}
    assert pair["sparse"].config.model.densities < 0.5  # the dense stem takes part of the budget
    check_pair(pair)


def test_a_factory_knob_and_seeds_and_axes(tmp_path, monkeypatch):
    (tmp_path / "knobs.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model = {"factory": "knobs:build", "kwargs": {"hidden": 10}, "width_key": "kwargs.hidden"}
    axes = {"train.lr": [0.1, 0.01]}
    found = pairs(spec(model, {"ratios": [0.3, 0.7], "seeds": [0, 1], "axes": axes}))
    assert len(found) == 2 * 2 * 2
    assert {p["dense"].config.model.kwargs["hidden"] for p in found.values()} == {3, 7}
    for pair in found.values():
        assert pair["sparse"].config.model.kwargs == {"hidden": 10}
        assert pair["sparse"].config.train.lr == pair["dense"].config.train.lr
        check_pair(pair)
    # the knob's default where the spec leaves it out: the factory's hidden=16
    (pair,) = pairs(spec({"factory": "knobs:build", "width_key": "kwargs.hidden"})).values()
    assert pair["dense"].config.model.kwargs == {"hidden": 8}


def test_mlp_may_match_the_total_too_and_layer_stays_the_default():
    grid = {"sparse_width": 32, "depths": [2]}
    (pair,) = pairs(spec({"family": "mlp"}, {**grid, "match": "total"})).values()
    assert pair["sparse"].config.model.widths == (32, 32) and pair["dense"].config.model.widths == (16, 16)
    assert pair["sparse"].config.model.init_widths == (16, 16)
    check_pair(pair)
    with pytest.raises(
        SpecError, match=r"model\.width_key: family mlp takes its width from grid\.sparse_width"
    ):
        pairs(spec({"family": "mlp", "width_key": "kwargs.hidden"}, {**grid, "match": "total"}))
    (layered,) = pairs(spec({"family": "mlp"}, {**grid, "match": "layer"})).values()
    assert layered["sparse"].config.model.densities == (0.5, 0.25, 0.5)
    assert layered["sparse"].meta.capacity_mismatch == 0.0


BAD = [
    ({"width_key": "kwargs.width"}, {}, "model.width_key: the Wide ResNet takes no argument 'width'"),
    ({"width_key": "depth"}, {}, "model.width_key: 'depth' must name a builder argument in model.kwargs"),
    (
        {"width_key": "kwargs.num_classes"},
        {},
        "model.width_key: the Wide ResNet takes no argument 'num_classes'",
    ),
    (
        {"kwargs": {"depth": 10, "widen_factor": 2.5}},
        {},
        "model.width_key: kwargs.widen_factor is 2.5; SC-SDC scales a positive integer width",
    ),
    ({}, {"ratios": [0.1]}, "grid.ratios: 0.1 × kwargs.widen_factor 4 rounds to a dense width of 0"),
    ({}, {"depths": [2]}, "grid.depths: describes an mlp or a cnn"),
    ({"width_key": None}, {}, "model.width_key: SC-SDC with match: total scales a wrn model's width"),
    ({}, {"match": "layer"}, "grid.match: layer pairs each layer with a narrower dense one"),
]


@pytest.mark.parametrize(("model", "grid", "message"), BAD, ids=[m for *_, m in BAD])
def test_a_mistake_is_one_line(cli, tmp_path, model, grid, message):
    path = write_spec(tmp_path / "bad.yaml", yaml.safe_dump(spec({**WRN, **model}, grid)))
    assert message in refused_dry_run(cli, path, tmp_path / "r")


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_a_wide_resnet_pair_trains_and_reports(cli, tmp_path):
    raw = spec(
        {"family": "wrn", "kwargs": {"depth": 10, "widen_factor": 2}, "width_key": "kwargs.widen_factor"},
        dataset={"name": "synthetic", "subset": 256},
        train={"epochs": 1, "batch_size": 64},
        egf={"samples": 64},
    )
    path = write_spec(tmp_path / "wrn.yaml", yaml.safe_dump(raw))
    result = cli("run", path, "--results", tmp_path / "r")
    assert result.code == 0, result.err
    rows = {row["role"]: row for row in ResultsStore(tmp_path / "r").rows("trials", "total")}
    assert set(rows) == {"sparse", "dense"} and {r["status"] for r in rows.values()} == {"done"}
    sparse, dense = rows["sparse"], rows["dense"]
    assert sparse["pair_id"] == dense["pair_id"] == dense["trial_key"]
    assert sparse["capacity_mismatch"] is not None and abs(sparse["capacity_mismatch"]) < 1e-2
    assert sparse["active_weights"] - dense["active_weights"] == pytest.approx(
        sparse["capacity_mismatch"] * dense["active_weights"]
    )
    report = cli("report", "total", "--results", tmp_path / "r", "--out", tmp_path / "report")
    assert report.code == 0, report.err
    assert "SC-SDC" in (tmp_path / "report" / "report.md").read_text()
