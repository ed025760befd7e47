"""Any PyTorch model: a torchvision ResNet-18, the project's Wide ResNet, a timm model and the user's own
factory train masked with every mask method; masked weights stay exactly zero, `dense_layers` stay dense, EGF
is exact, every layer shape keeps its output shape, and each mistake is one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
import yaml
from torch import nn

from sweep.core.data import load_arrays
from sweep.core.gradflow import measure_flow
from sweep.core.masked_model import mask_in_place
from sweep.core.models import build_model
from sweep.core.train import train_trial
from sweep.spec import METHODS, DatasetSpec, parse_trial

from .conftest import factory_module, refused_dry_run, write_spec

INPUT = (3, 16, 16)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """A folder of PNG images, 10 classes whose images carry their class (so training has a signal), read as
    `dataset.name: image_folder` reads it."""
    from PIL import Image

    root, rng = tmp_path_factory.mktemp("images"), np.random.default_rng(0)
    for part, count in (("train", 64), ("test", 32)):
        for i in range(count):
            label = i % 10
            pixels = rng.integers(0, 120, size=(20, 20, 3), dtype=np.uint8)  # resized to 16×16 on reading
            pixels[:, 2 * label : 2 * label + 2, label % 3] = 250
            folder = root / part / f"class-{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return load_arrays(DatasetSpec(name="image_folder", data_dir=str(root), image_size=16))


def zeros_hold(model: nn.Module) -> bool:
    """Every masked weight is exactly zero."""
    return all(torch.count_nonzero(layer.weight[layer.mask == 0]) == 0 for layer in model.weight_layers)


def config(model: dict, method: str, **train):
    sparsity = {"method": method, "update_every": 2, "synflow_rounds": 2, "score_batch": 16}
    sparsity |= {"grasp_per_class": 2} if method == "grasp" else {}
    sparsity |= {"levels": 1} if method == "imp" else {}
    return parse_trial(
        {
            "dataset": {"name": "synthetic", "val_fraction": 0.0},
            "model": {"densities": 0.2, **model},
            "train": {
                "optimizer": "momentum",
                "lr": 0.05,
                "weight_decay": 5e-4,
                "epochs": 1,
                "batch_size": 16,
            }
            | train,
            "egf": {"samples": 16},
            "sparsity": sparsity,
        }
    )


RESNET = {"family": "torchvision", "name": "resnet18", "dense_layers": ["conv1", "fc"]}
WRN = {"family": "wrn", "kwargs": {"depth": 10, "widen_factor": 1}, "dense_layers": ["stem"]}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("model", "precision"),
    [(RESNET, "fp32"), (WRN, "fp32"), (WRN, "bf16")],
    ids=["resnet18", "wrn-10-1", "wrn-10-1-bf16"],
)
def test_every_method_trains_the_model_masked_and_keeps_masked_weights_zero(colour, model, precision, method):
    outcome = train_trial(config(model, method, precision=precision), data=colour)
    assert outcome.status == "done", outcome.error
    net = outcome.model
    for layer in net.weight_layers:
        assert (
            torch.count_nonzero(layer.weight[layer.mask == 0]) == 0
        )  # exactly zero, after momentum and decay
        assert layer.active_weights == int(layer.mask.sum()) >= int(torch.count_nonzero(layer.weight))
    names = net.layer_names
    dense = [
        layer.density
        for name, layer in zip(names, net.weight_layers, strict=True)
        if name in model["dense_layers"]
    ]
    assert dense and all(d == 1.0 for d in dense)  # dense_layers stay dense, whatever the method
    assert net.active_weights < 0.5 * net.total_weights
    report = outcome.epochs[-1]
    assert [row["module"] for row in outcome.facts.layers] == names
    assert len(report.layers) == len(names) and np.isfinite(report.metrics["egf"])


def test_egf_of_a_masked_resnet_equals_an_independent_autograd_computation(colour):
    model = build_model(parse_trial({"model": RESNET | {"densities": 0.1}}).model, INPUT, 10, seed=3)
    x = torch.from_numpy(colour.train_x[:12]).float() / 255
    y = torch.from_numpy(colour.train_y[:12])
    flow = measure_flow(model, x, y)

    plain = torchvision.models.resnet18(num_classes=10)
    plain.load_state_dict(model.net.state_dict())  # the masked model's weights load into a plain copy
    plain.eval()
    kernels = dict(plain.named_modules())
    names = model.layer_names
    grads = torch.autograd.grad(F.cross_entropy(plain(x), y), [kernels[n].weight for n in names])
    masks = [layer.mask for layer in model.weight_layers]
    expected = sum(float((g * m).norm()) for g, m in zip(grads, masks, strict=True)) / len(names)
    assert flow.egf == pytest.approx(expected, rel=1e-5)
    assert flow.gf2 == pytest.approx(float(torch.sqrt(sum((g**2).sum() for g in grads))), rel=1e-5)


def test_strided_grouped_dilated_and_1d_3d_convolutions_keep_their_output_shapes_masked():
    torch.manual_seed(0)
    layers = nn.ModuleList(
        [
            nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, dilation=2),
            nn.Conv2d(4, 4, (1, 5), bias=False, groups=4),
            nn.Conv1d(4, 6, 5, stride=3),
            nn.Conv3d(4, 2, 3, padding=2, dilation=2),
            nn.Linear(4, 3),
        ]
    )
    inputs = [
        torch.randn(2, 4, 9, 9),
        torch.randn(2, 4, 9, 9),
        torch.randn(2, 4, 20),
        torch.randn(2, 4, 5, 5, 5),
    ]
    inputs.append(torch.randn(2, 4))
    before = [layer(x).shape for layer, x in zip(layers, inputs, strict=True)]
    masks = [torch.rand(layer.weight.shape) < 0.3 for layer in layers]
    masked = mask_in_place(layers, [m.float() for m in masks])
    after = [layer(x).shape for layer, x in zip(layers, inputs, strict=True)]
    assert after == before
    for layer, mask in zip(masked.weight_layers, masks, strict=True):
        assert layer.active_weights == int(mask.sum()) and torch.count_nonzero(layer.weight[~mask]) == 0
        assert type(layer).__name__.startswith("Masked") and isinstance(layer, nn.Module)
    assert "mask" not in "".join(masked.net.state_dict())  # loads into a plain copy


def test_a_timm_model_trains_masked(colour):
    pytest.importorskip("timm")
    model = {"family": "timm", "name": "resnet10t", "dense_layers": ["fc"]}
    outcome = train_trial(config(model, "snip"), data=colour)
    assert outcome.status == "done", outcome.error
    assert zeros_hold(outcome.model)


def test_a_resnet_in_bf16_keeps_masked_weights_zero(colour):
    # bf16 steps at the other tests' rate can overflow this small batch's loss: a gentler one keeps it finite
    outcome = train_trial(config(RESNET, "rigl", precision="bf16", lr=0.01), data=colour)
    assert outcome.status == "done", outcome.error
    assert zeros_hold(outcome.model)


def test_fp16_on_a_cpu_is_one_line(cli, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        "name: half\nkind: single\ndataset: {name: synthetic, subset: 64}\nmodel: {widths: [8]}\n"
        "train: {epochs: 1, device: cpu, precision: fp16}\negf: {samples: 16}\n",
    )
    result = cli("train", str(spec), "--results", str(tmp_path / "r"))
    assert result.code == 2 and "Traceback" not in result.err, result.err
    (line,) = result.err.strip().splitlines()
    assert "train.precision: fp16 needs a CUDA device, this trial runs on cpu; use bf16" in line


FACTORY = """
from torch import nn


def build(input_shape, num_classes, hidden=16, classes=None):
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(hidden * 4, classes or num_classes),
    )


def nothing(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.ReLU())
"""


@pytest.fixture
def factory_dir(tmp_path, monkeypatch):
    return factory_module(tmp_path, monkeypatch, "my_models", FACTORY)


def test_an_edited_factory_is_another_trial(factory_dir):
    first = parse_trial({"model": {"factory": "my_models:build"}})
    assert first.model.family == "factory"
    key = first.key
    assert parse_trial({"model": {"factory": "my_models:build"}}).key == key
    (factory_dir / "my_models.py").write_text(FACTORY + "\n# hidden layers now wider\n")
    assert parse_trial({"model": {"factory": "my_models:build"}}).key != key


BAD = [
    (
        {"family": "torchvision", "name": "resnet181"},
        "model.name: 'resnet181' is not a torchvision model; did you mean resnet18",
    ),
    (
        {"family": "torchvision", "name": "resnet18", "kwargs": {"depth": 3}},
        "model.kwargs: torchvision model resnet18 does not take {'depth': 3}",
    ),
    (
        {"family": "torchvision", "name": "resnet18", "dense_layers": ["stem*"]},
        "model.dense_layers: 'stem*' matches no maskable module; they are: conv1,",
    ),
    ({"family": "torchvision", "name": "resnet18"}, "does not take the data's images of shape [1, 28, 28]"),
    (
        {"factory": "my_models:build", "kwargs": {"classes": 3}},
        "gives outputs of shape [2, 3] for a batch of 2; the data has 10 classes",
    ),
    ({"factory": "my_models:nothing"}, "model: factory my_models:nothing has no linear or conv layer"),
    (
        {"factory": "not_there.models:build"},
        "model.factory: cannot import 'not_there.models' (ModuleNotFound",
    ),
    ({"factory": "my_models:missing"}, "model.factory: module 'my_models' has no function 'missing'"),
    (
        {"family": "torchvision", "name": "resnet18", "densities": {"layer9.*": 0.1, "*": 0.2}},
        "model.densities: 'layer9.*' matches no masked module; they are: conv1, layer1.0.conv1,",
    ),
    (
        {"family": "torchvision", "name": "resnet18", "densities": {"layer1.*": 0.1}},
        "model.densities: no pattern gives module 'conv1' a density (add '*' for the rest)",
    ),
    ({"family": "mlp", "densities": {"*": 0.1}}, "model.densities: a mapping of module patterns applies to"),
    ({"family": "wrn", "widths": [10]}, "model.widths: applies to the families mlp and cnn"),
    ({"family": "mlp", "name": "resnet18"}, "model.name: family mlp is the project's own"),
]


@pytest.mark.parametrize(("model", "message"), BAD, ids=[m for _, m in BAD])
def test_a_model_mistake_is_one_line_before_anything_runs(cli, factory_dir, model, message):
    data = "fashion_mnist" if "[1, 28, 28]" in message else "cifar10"  # grey images where the case needs them
    spec = {"name": "bad", "kind": "single", "dataset": {"name": data}, "model": model}
    path = write_spec(factory_dir / "bad.yaml", yaml.safe_dump(spec))
    assert message in refused_dry_run(cli, path, factory_dir / "r")


def test_densities_by_module_pattern_the_longest_match_wins(cli, tmp_path):
    densities = {"*": 0.2, "layer4.*": 0.05, "fc": 1.0}  # the order does not matter
    model = {"family": "torchvision", "name": "resnet18", "densities": densities}
    spec = {"name": "by-name", "kind": "single", "dataset": {"name": "cifar10"}, "model": model}
    path = write_spec(tmp_path / "s.yaml", yaml.safe_dump(spec))
    result = cli("run", str(path), "--dry-run", "--results", str(tmp_path / "r"))
    assert result.code == 0, result.err
    rows = {line.split()[0]: line.split()[3] for line in result.out.splitlines() if line.startswith("    ")}
    assert rows["layer4.1.conv2"] == "0.0500" and rows["fc"] == "1.0000"
    assert rows["layer1.0.conv1"] == "0.2000", result.out


def test_a_dry_run_shows_the_models_layers_and_the_datas_shape(cli, tmp_path):
    model = {"family": "torchvision", "name": "resnet18", "densities": 0.1, "dense_layers": ["conv1", "fc"]}
    spec = {"name": "dry", "kind": "single", "dataset": {"name": "cifar10"}, "model": model}
    path = write_spec(tmp_path / "dry.yaml", yaml.safe_dump(spec))
    result = cli("run", str(path), "--dry-run", "--results", str(tmp_path / "r"))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    data = "  data: cifar10, images 3×32×32, 10 classes; 45,000 training, 5,000 validation and 10,000 test"
    assert any(line.startswith(data) for line in lines), result.out
    assert "  model: torchvision resnet18" in lines
    assert any(line.split() == ["conv1", "conv", "64×3×7×7", "1.0000", "9,408"] for line in lines)
    assert any(line.split()[:3] == ["layer1.0.conv1", "conv", "64×64×3×3"] for line in lines)
    built = build_model(parse_trial({"model": model}).model, (3, 32, 32), 10, seed=0)
    total = f"21 layers: {built.active_weights:,} of {built.total_weights:,} weights active"
    assert any(line.strip().startswith(total) for line in lines), result.out
    assert not (tmp_path / "r").exists()
