"""Specs: parsing, overrides, trial keys, and every bad input of SPEC.md §7 through the CLI."""

from __future__ import annotations

import os

import pytest

from sweep.errors import SpecError
from sweep.spec import TrialConfig, apply_overrides, load_spec, parse_spec, with_settings

from .conftest import SPECS, write_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray for the module's sweeps

GOOD = """
name: t
kind: single
dataset: {name: synthetic}
model: {family: mlp, widths: [16], densities: 0.5}
train: {epochs: 1, batch_size: 64}
"""


def test_shipped_specs_parse():
    for path in sorted(SPECS.glob("**/*.yaml")):
        spec = load_spec(path)
        assert spec.name and spec.kind in ("single", "snas", "sc_sdc", "grid"), path


def test_overrides_parse_yaml_values(tmp_path):
    spec = load_spec(
        write_spec(tmp_path / "s.yaml", GOOD),
        ["train.epochs=3", "model.densities=[0.1,0.2]", "model.widths=[8]", "train.lr=1e-3"],
    )
    assert spec.train.epochs == 3
    assert spec.model.densities == (0.1, 0.2)
    assert spec.model.widths == (8,)
    assert spec.train.lr == pytest.approx(1e-3)


def test_override_of_grid_axis_keeps_the_dotted_name():
    raw = apply_overrides({"name": "g", "kind": "sc_sdc"}, ["grid.axes.train.optimizer=[sgd, adam]"])
    spec = parse_spec(raw)
    assert spec.grid.axes == {"train.optimizer": ("sgd", "adam")}


def test_defaults_fill_missing_sections():
    spec = parse_spec({"name": "only-a-name"})
    assert spec.kind == "single" and spec.model.widths == (300, 100) and spec.train.epochs == 20


def test_trial_key_is_pinned():
    """Golden keys: a change here renames every stored trial, so it must be deliberate."""
    assert TrialConfig().key == "44136fa355b3678a"
    config = with_settings(TrialConfig(), {"model.densities": 0.05, "train.seed": 3})
    assert config.key == "8e97b70ac9f9316e"


def test_trial_key_ignores_defaults_and_where_data_lives():
    base = TrialConfig()
    assert with_settings(base, {"train.momentum": 0.9}).key == base.key  # an explicit default
    assert with_settings(base, {"dataset.data_dir": "/elsewhere", "dataset.download": True}).key == base.key
    assert with_settings(base, {"train.device": "cpu"}).key != base.key  # CPU and GPU runs differ
    assert with_settings(base, {"train.seed": 1}).key != base.key


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.widht=3", "model.widht: unknown key (did you mean 'widths'?)"),
        ("bogus=1", "bogus: unknown key"),
        ("train.epochs=ten", "train.epochs: expected an integer, got str 'ten'"),
        ("train.lr=fast", "train.lr: expected a number"),
        ("model.densities=1.5", "model.densities: 1.5 is out of range"),
        ("model.densities=0", "model.densities: 0.0 is out of range"),
        (
            "model.densities=[0.1,0.2,0.3]",
            "model.densities: [0.1, 0.2, 0.3] has 3 entries, but the model has 2",
        ),
        ("dataset.name=imagenet", "dataset.name: 'imagenet' is not allowed; choose one of fashion_mnist"),
        ("train.optimizer=lion", "train.optimizer: 'lion' is not allowed"),
        ("model.activation=srelu", "model.activation: 'srelu' is not allowed"),
        ("kind=lattice", "kind: 'lattice' is not allowed; choose one of single, snas, sc_sdc, grid"),
        ("train.epochs=0", "train.epochs: 0 is out of range; allowed: > 0"),
        ("train.epochs=-2", "train.epochs: -2 is out of range"),
        ("train.batch_size=0", "train.batch_size: 0 is out of range"),
        ("egf.samples=-1", "egf.samples: -1 is out of range"),
        ("egf=3", "egf: expected a mapping"),
        ("name=a/b", "name: 'a/b' is not allowed"),
        ("model.mask=erk", None),  # valid: one overall density
    ],
)
def test_bad_settings_get_one_clear_line(cli, tmp_path, override, needle):
    spec = write_spec(tmp_path / "s.yaml", GOOD)
    result = cli(
        "train",
        spec,
        "--set",
        override,
        "--set",
        "train.epochs=1" if "epochs" not in override else "egf.samples=8",
        "--results",
        tmp_path / "r",
    )
    if needle is None:
        assert result.code == 0, result.err
        return
    assert result.code == 2
    assert needle in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: s\nkind: snas\ngrid: {ratios: [0.5]}\n", "grid: a grid belongs to kind sc_sdc"),
        ("name: s\nkind: sc_sdc\nsearch: {num_samples: 2}\n", "search: a search belongs to kind snas"),
        ("name: s\nkind: snas\nsearch: {sampler: cmaes}\n", "search.sampler: 'cmaes' is not allowed"),
        ("name: s\nkind: snas\nsearch: {num_samples: 0}\n", "search.num_samples: 0 is out of range"),
        ("name: s\nkind: sc_sdc\ngrid: {ratios: []}\n", "grid.ratios: expected a non-empty list"),
        (
            "name: s\nkind: snas\nsearch: {baseline_seeds: [0, 1]}\n",
            "search.baseline_seeds: [0, 1] needs search.baselines: true",
        ),
        (
            "name: s\nkind: sc_sdc\ngrid: {axes: {train.optimizer: []}}\n",
            "grid.axes.train.optimizer: an axis needs",
        ),
        (
            "name: s\nkind: sc_sdc\ngrid: {axes: {train.optimiser: [sgd]}}\n",
            "grid.axes.train.optimiser: unknown",
        ),
        ("name: s\nmodel: {widths: [10, 10\n", "s.yaml:3: YAML does not parse"),
        ("name: s\nmodel:\n  widths: [10]\n   bad: 1\n", "s.yaml:4: YAML does not parse"),
        ("- just\n- a list\n", "a spec is a mapping of sections"),
        ("kind: single\n", "name: required, but missing"),
    ],
)
def test_bad_specs_get_one_clear_line(cli, tmp_path, text, needle):
    result = cli("train", write_spec(tmp_path / "s.yaml", text), "--results", tmp_path / "r")
    assert result.code == 2
    assert needle in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_missing_spec_file(cli, tmp_path):
    result = cli("train", tmp_path / "nope.yaml")
    assert result.code == 2 and "nope.yaml does not exist" in result.err


def test_bad_override_syntax(cli, tmp_path):
    result = cli("train", write_spec(tmp_path / "s.yaml", GOOD), "--set", "train.epochs")
    assert result.code == 2 and "expected KEY=VALUE" in result.err


def test_erk_rejects_a_density_list():
    with pytest.raises(SpecError, match="erk takes one overall density"):
        parse_spec({"name": "e", "model": {"mask": "erk", "widths": [4], "densities": [0.1, 0.2]}})


def test_linked_grid_axes_vary_settings_together():
    from sweep.plans.sc_sdc import sc_sdc_trials

    spec = parse_spec(
        {
            "name": "g",
            "kind": "sc_sdc",
            "grid": {
                "sparse_width": 20,
                "ratios": [0.5],
                "depths": [1],
                "seeds": [0],
                "axes": {
                    "train.optimizer+train.lr": [["sgd", 0.1], ["adam", 0.001]],
                    "model.batchnorm": [False, True],
                },
            },
        }
    )
    trials = sc_sdc_trials(spec)
    assert len(trials) == 2 * 2 * 2
    assert {(t.config.train.optimizer, t.config.train.lr) for t in trials} == {("sgd", 0.1), ("adam", 0.001)}
    assert len({t.meta.pair_id for t in trials}) == 4


@pytest.mark.parametrize(
    ("axes", "needle"),
    [
        (
            {"train.optimizer+train.lr": [["sgd"]]},
            "each value must be a list of 2 (train.optimizer, train.lr)",
        ),
        ({"train.optimizer+model.widths": [["sgd", [3]]]}, "model.widths is set by the grid itself"),
        ({"train.optimizer+train.rate": [["sgd", 0.1]]}, "unknown setting train.rate"),
    ],
)
def test_bad_linked_axes(axes, needle):
    with pytest.raises(SpecError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_spec({"name": "g", "kind": "sc_sdc", "grid": {"axes": axes}})


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (
            "train.seed=1000000000000000000000",
            "train.seed: 1000000000000000000000 is out of range; allowed: >= 0",
        ),
        ("train.seed=4294967296", "train.seed: 4294967296 is out of range; allowed: >= 0 and <= 4294967295"),
        ("egf.samples=1000000000000000000000", "egf.samples: 1000000000000000000000 is out of range"),
        (
            "train.batch_size=1000000000000000000000",
            "train.batch_size: 1000000000000000000000 is out of range",
        ),
        (
            "train.epochs=2147483648",
            "train.epochs: 2147483648 is out of range; allowed: > 0 and <= 2147483647",
        ),
        ("model.widths=[16, 99999999999]", "model.widths[1]: 99999999999 is out of range"),
        ("dataset.subset=9223372036854775808", "dataset.subset: 9223372036854775808 is out of range"),
    ],
)
def test_integers_out_of_what_the_trainer_holds_get_one_line(cli, tmp_path, override, needle):
    result = cli(
        "train", write_spec(tmp_path / "s.yaml", GOOD), "--set", override, "--results", tmp_path / "r"
    )
    assert result.code == 2, result.out
    assert needle in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert not (tmp_path / "r" / "trials").exists()


def test_the_largest_allowed_integers_validate():
    spec = parse_spec(
        {
            "name": "big",
            "kind": "sc_sdc",
            "train": {"seed": 2**32 - 1, "epochs": 2**31 - 1},
            "grid": {"seeds": [2**32 - 1]},
            "ray": {"max_failures": 2**31 - 1},
        }
    )
    assert spec.train.seed == 2**32 - 1 and spec.grid.seeds == (2**32 - 1,)
    with pytest.raises(SpecError, match=r"search.seed: 4294967296 is out of range"):
        parse_spec({"name": "s", "kind": "snas", "search": {"seed": 2**32}})
    with pytest.raises(SpecError, match=r"grid.seeds\[0\]: 4294967296 is out of range"):
        parse_spec({"name": "g", "kind": "sc_sdc", "grid": {"seeds": [2**32]}})


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: "/dev/zero", "spec file /dev/zero is not a regular file; give a YAML file"),
        (lambda tmp: tmp, "is a folder; give a YAML file"),
        (
            lambda tmp: write_spec(tmp / "huge.yaml", "# padding\n" * 200_000),
            "huge.yaml is larger than 1 MB; a spec is a short YAML file",
        ),
        (lambda tmp: write_bytes(tmp / "bin.yaml", b"name: \xff\xfe\n"), "bin.yaml is not UTF-8 text"),
    ],
)
def test_what_is_not_a_spec_file_is_refused_in_one_line(cli, tmp_path, make, needle):
    result = cli("train", make(tmp_path), "--results", tmp_path / "r")
    assert result.code == 2
    assert needle in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(cli, tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result = cli("run", fifo, "--results", tmp_path / "r")
    assert result.code == 2 and f"spec file {fifo} is not a regular file" in result.err
