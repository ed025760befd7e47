"""SNAS on any model: one density per masked layer or per group of layers, the active weights counted on the
real model, warm starts at one level, each mistake one line, and a real search of a Wide ResNet on Ray."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from sweep.core.models import build_model
from sweep.plans.history import fit_rows
from sweep.plans.snas import define_space, make_template, objective
from sweep.plans.types import PLANNED
from sweep.spec import parse_spec, parse_trial
from sweep.store import ResultsStore

from .conftest import factory_module, refused_dry_run, write_spec

SHAPE, CLASSES = (1, 12, 12), 10  # the synthetic data set's
LEVELS = [0.25, 0.5, 1.0]
FACTORY = """
from torch import nn


def build(input_shape, num_classes):
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes),
    )
"""  # its maskable layers: "0", "2" and "6"


@pytest.fixture
def factory_dir(tmp_path, monkeypatch):
    return factory_module(tmp_path, monkeypatch, "snas_models", FACTORY)


def snas_spec(model: dict | None = None, **search) -> dict:
    model = {"factory": "snas_models:build", **(model or {})}
    search = {"density_levels": LEVELS, "warm_start_density": 0.3, "sampler": "random", **search}
    return {"name": "s", "kind": "snas", "dataset": {"name": "synthetic"}, "model": model, "search": search}


def sampled(template, seed: int) -> tuple[dict, dict, float]:
    """One proposal of the space: its parameters, the trial config they make, and its budget constraint."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    planned = define_space(trial, template)[PLANNED]
    attrs = study.trials[-1].system_attrs
    (constraint,) = [value for key, value in attrs.items() if key.endswith(":active_weights")]
    return trial.params, planned["config"], constraint


@pytest.mark.parametrize(
    ("model", "groups", "names", "dims"),
    [
        ({"dense_layers": ["6"]}, {}, ["density_0", "density_1"], [0, 1]),
        ({}, {"convs": ["0", "2"], "head": ["6"]}, ["density_convs", "density_head"], [0, 0, 1]),
    ],
    ids=["per-layer", "groups"],
)
def test_a_fixed_model_searches_one_density_per_masked_layer_or_group(
    factory_dir, model, groups, names, dims
):
    spec = parse_spec(snas_spec(model, groups=groups, max_active_weights=500))
    template = make_template(spec, SHAPE, CLASSES)
    assert list(template.layers.names) == names
    assert template.warm_starts == (tuple((name, 0.25) for name in names),)  # 0.3 snapped to 0.25
    for seed in range(4):
        params, raw, constraint = sampled(template, seed)
        assert sorted(params) == sorted(names) and set(params.values()) <= set(LEVELS)
        config = parse_trial(raw)
        assert config.model.mask == "uniform" and config.model.widths == spec.model.widths
        assert list(config.model.densities) == [params[names[d]] for d in dims]  # one per masked layer
        built = build_model(config.model, SHAPE, CLASSES, seed=0)
        assert template.active_weights(params) == built.active_weights  # dense layers count in full
        assert constraint == built.active_weights - 500  # feasible when <= 0
        assert template.layers.params_of(config.model, template.levels) == params  # history reads it back


GROUPED = {"stem": ["stem"], "stage1": ["blocks.0.*"], "stage2": ["blocks.1.*"], "stage3": ["blocks.2.*"]}
BAD = [
    (
        {"model": {"factory": None, "family": "mlp", "widths": [16]}, "groups": {"a": ["0"]}},
        "search.groups: applies to the families wrn, torchvision, timm and factory",
    ),
    (
        {"groups": {"head": ["classifier"]}},
        "search.groups.head: 'classifier' matches no maskable module; they are: 0, 2, 6",
    ),
    ({"groups": {"a": ["0", "2"], "b": ["2", "6"]}}, "search.groups: layer '2' is in both a and b"),
    ({"groups": {"a": ["0"]}}, "search.groups: masked layers in no group: 2, 6"),
    (
        {"model": {"dense_layers": ["6"]}, "groups": {"a": ["0", "2"], "b": ["6"]}},
        "search.groups.b: matches only layers model.dense_layers keeps dense",
    ),
    ({"max_depth": 3}, "search.max_depth: a factory model's architecture is fixed"),
    ({"baselines": True}, "search.baselines: scale the widths of the families mlp and cnn"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_a_search_mistake_is_one_line_before_anything_runs(cli, factory_dir, change, message):
    change = dict(change)
    model = change.pop("model", {})
    raw = snas_spec(**change)
    raw["model"] = {k: v for k, v in {**raw["model"], **model}.items() if v is not None}
    path = write_spec(factory_dir / "bad.yaml", yaml.safe_dump(raw))
    assert message in refused_dry_run(cli, path, factory_dir / "r")


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_a_wide_resnet_search_follows_its_groups(cli, tmp_path):
    spec = {
        "name": "snas-wrn",
        "kind": "snas",
        "dataset": {"name": "synthetic", "subset": 256},
        "model": {"family": "wrn", "kwargs": {"depth": 10, "widen_factor": 1}, "dense_layers": ["fc"]},
        "train": {"epochs": 1, "batch_size": 64},
        "egf": {"samples": 64},
        "search": {"num_samples": 4, "sampler": "random", "seed": 0, "groups": GROUPED},
    }
    result = cli("run", write_spec(tmp_path / "s.yaml", yaml.safe_dump(spec)), "--results", tmp_path / "r")
    assert result.code == 0, result.err
    trials = ResultsStore(tmp_path / "r").rows("trials", "snas-wrn")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"done"}
    assert {t["role"] for t in trials} == {"warm_start", "search"}
    stages = [[0], [1, 2], [3, 4, 5], [6, 7, 8]]  # stem, then each stage's conv1, conv2 (and shortcut)
    for trial in trials:
        asked = json.loads(trial["config"])["model"]["densities"]
        assert len(asked) == 9 and len(trial["densities"]) == 10
        assert trial["densities"][9] == 1.0  # fc: kept dense
        for layers in stages:
            assert len({asked[i] for i in layers}) == 1  # one density per group
            for i in layers:
                assert trial["densities"][i] == pytest.approx(asked[i], abs=0.02)
    parsed = parse_spec(spec)
    fitted = fit_rows(make_template(parsed, SHAPE, CLASSES), objective(parsed.search), trials, {})
    assert len(fitted.trials) == 4 and not fitted.misfits  # a lost study is rebuilt from these rows
    report = cli("report", "snas-wrn", "--results", tmp_path / "r", "--out", tmp_path / "report")
    assert report.code == 0, report.err
    assert "SNAS" in (tmp_path / "report" / "report.md").read_text()
