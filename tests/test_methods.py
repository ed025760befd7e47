"""Mask methods: exact counts after every update, masked weights exactly zero after every step, the scores
against a hand computation, RigL and SET regrowth, IMP rewinding, seeds, and checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sweep.core.data import SHAPES, make_splits
from sweep.core.data_facts import SIZES
from sweep.core.epoch import train_epoch
from sweep.core.masks import methods
from sweep.core.masks.allocation import active_count
from sweep.core.masks.pruning_at_init import grasp_scores, snip_scores
from sweep.core.models import build_model, model_densities, weight_shapes
from sweep.core.train import Training, train_trial
from sweep.plans.grid import same_capacity_widths
from sweep.spec import METHODS, ModelSpec, config_to_dict, parse_trial
from sweep.store import ResultsStore, query

from .conftest import write_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray for the module's sweeps

STATIC = ("random", "shuffle", "snip", "grasp", "synflow")


def config(method: str, scope: str = "layer", **sparsity):
    return parse_trial(
        {
            "dataset": {"name": "synthetic"},
            "model": {"widths": [48, 24], "densities": [0.3, 0.2, 0.5], "dropout": 0.1},
            "train": {"epochs": 3, "batch_size": 64, "optimizer": "momentum", "lr": 0.05},
            "egf": {"samples": 128},
            "sparsity": {"method": method, "scope": scope, "update_every": 5, "levels": 2, **sparsity},
        }
    )


def targets(cfg) -> list[int]:
    shapes = weight_shapes(cfg.model, (1, 12, 12), 10)
    densities = model_densities(cfg.model, (1, 12, 12), 10)
    return [active_count(d, math.prod(s)) for d, s in zip(densities, shapes, strict=True)]


def test_the_data_sets_shapes_and_sizes_are_known_before_loading(synthetic):
    assert SHAPES["synthetic"] == (synthetic.input_shape, synthetic.num_classes)
    assert SIZES["synthetic"] == (len(synthetic.train_y), len(synthetic.test_y))


def test_the_dense_reference_has_the_sparse_nets_capacity():
    model = ModelSpec(widths=(300, 100), densities=0.1)
    shapes = weight_shapes(model, (1, 28, 28), 10)
    target = round(0.1 * 784 * 300) + round(0.1 * 300 * 100) + round(0.1 * 100 * 10)
    widths = same_capacity_widths(model, (1, 28, 28), 10, target)
    dense = sum(math.prod(s) for s in weight_shapes(ModelSpec(widths=tuple(widths)), (1, 28, 28), 10))
    assert widths == [33, 11] and abs(dense - target) / target < 0.02
    assert sum(math.prod(s) for s in shapes) > 9 * target


@pytest.mark.parametrize(
    ("method", "scope"),
    [(m, "layer") for m in METHODS]
    + [(m, "global") for m in ("shuffle", "snip", "grasp", "synflow", "gmp", "imp")],
)
def test_counts_are_exact_after_every_update_and_masked_weights_stay_zero_after_every_step(
    synthetic, method, scope
):
    """One training step at a time (an epoch of one batch): after each, the invariants hold."""
    cfg = config(method, scope, update_every=2)
    splits = make_splits(synthetic, cfg.dataset, 0)
    model, masks = methods.start(cfg, splits, torch.device("cpu"))
    training = Training(model, cfg.train, masks)
    wanted = targets(cfg)
    counts = [layer.active_weights for layer in model.weight_layers]
    if scope == "layer" and method not in ("gmp", "imp"):
        assert counts == wanted  # every method keeps each layer's count
    elif method in ("gmp", "imp"):
        assert counts == [layer.total_weights for layer in model.weight_layers]  # they start dense
    else:
        assert sum(counts) == sum(wanted) and all(c >= 1 for c in counts)  # one threshold, total kept
    batch = type(splits.train)(splits.train.x[:64], splits.train.y[:64])
    steps = math.ceil(len(splits.train) / 64) * cfg.train.epochs  # the steps the schedule plans for
    epochs = masks.total_epochs(cfg.train.epochs) if method == "imp" else steps
    for epoch in range(1, epochs + 1):
        masks.before_epoch(epoch)
        train_epoch(training, batch, epoch, epoch - 1)
        masks.after_epoch(epoch)
        now = [int(layer.dense_mask().sum()) for layer in model.weight_layers]
        assert now == [layer.active_weights for layer in model.weight_layers]
        if method in ("set", "rigl") or method in STATIC:
            assert now == counts  # never changes (static) or drop and regrow as many (dynamic)
        for layer in model.weight_layers:
            if layer.backend == "masked":
                assert torch.count_nonzero(layer.weight[layer.mask == 0]) == 0, (method, epoch)
        counts_now = now
    if method in ("gmp", "imp"):
        final = counts_now
        assert (final == wanted) if scope == "layer" else (sum(final) == sum(wanted))


@pytest.mark.parametrize("method", ["set", "rigl", "gmp", "imp"])
def test_changing_masks_train_masked_and_report_what_changed(synthetic, method):
    reports, facts = [], []
    cfg = config(method)
    outcome = train_trial(cfg, data=synthetic, on_epoch=lambda r, f: (reports.append(r), facts.append(f)))
    assert {layer["backend"] for layer in facts[-1].layers} == {"masked"}
    assert facts[-1].active_weights == sum(targets(cfg))
    assert facts[-1].epochs_total == (3 * 3 if method == "imp" else 3) == outcome.epochs[-1].epoch
    assert all(row["mask_changed"] is None for row in reports[0].layers)
    assert any(row["mask_changed"] > 0 for report in reports[1:] for row in report.layers)
    for report, fact in zip(reports, facts, strict=True):  # EGF's counts are those of the masks in force
        assert [row["active_weights"] for row in report.layers] == [
            layer["active_weights"] for layer in fact.layers
        ]
    if method == "imp":
        assert [r.metrics["level"] for r in reports] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_snip_and_grasp_scores_match_a_hand_computation():
    """A 4-3-2 tanh MLP: the gradient by hand in NumPy, and Hg by finite differences of it."""
    spec = ModelSpec(widths=(3,), activation="tanh", densities=1.0, mask="dense", backend="masked")
    model = build_model(spec, (1, 2, 2), 2, seed=3).double()
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    (first, _, out) = (model[1], model[2], model[3])
    w1, b1 = first.weight.detach().numpy(), first.bias.detach().numpy()
    w2, b2 = out.weight.detach().numpy(), out.bias.detach().numpy()
    xs, onehot = x.reshape(5, 4).numpy(), np.eye(2)[y.numpy()]

    def gradient(w1, w2, temperature=1.0):
        h = np.tanh(xs @ w1.T + b1)
        z = (h @ w2.T + b2) / temperature
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / len(xs) / temperature
        dpre = (dz @ w2) * (1 - h**2)
        return dpre.T @ xs, dz.T @ h

    g1, g2 = gradient(w1, w2)
    snip = snip_scores(model, x, y)
    assert np.allclose(snip[0].numpy(), np.abs(g1 * w1), rtol=1e-9)
    assert np.allclose(snip[1].numpy(), np.abs(g2 * w2), rtol=1e-9)

    temperature, eps = 2.0, 1e-6
    v1, v2 = gradient(w1, w2, temperature)  # Hg = (g(θ + εg) − g(θ − εg)) / 2ε
    plus, minus = (
        gradient(w1 + eps * v1, w2 + eps * v2, temperature),
        gradient(w1 - eps * v1, w2 - eps * v2, temperature),
    )
    hg1, hg2 = ((a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True))
    grasp = grasp_scores(model, x, y, temperature)
    assert np.allclose(grasp[0].numpy(), w1 * hg1, rtol=1e-5, atol=1e-12)
    assert np.allclose(grasp[1].numpy(), w2 * hg2, rtol=1e-5, atol=1e-12)


def _dynamic(data, method: str, seed: int = 0, **sparsity):
    cfg = parse_trial(
        {
            "dataset": {"name": "synthetic"},
            "model": {"widths": [48, 24], "densities": 0.2},
            "train": {"seed": seed, "epochs": 4},
            "sparsity": {"method": method, "drop_fraction": 0.3, **sparsity},
        }
    )
    model, masks = methods.start(cfg, make_splits(data, cfg.dataset, seed), torch.device("cpu"))
    return model, masks


@pytest.mark.parametrize("regrown", ["keep", "reset"])
def test_rigl_regrows_where_the_dense_gradient_is_largest_and_drops_the_smallest_weights(synthetic, regrown):
    model, masks = _dynamic(synthetic, "rigl", regrown=None if regrown == "keep" else "reset")  # None: keep
    Training(model, parse_trial({}).train, masks)
    layer = model.weight_layers[0]
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * layer.mask)
    layer.weight.grad = torch.randn(layer.weight.shape, generator=generator)
    before = layer.mask.bool().clone()
    k = round(0.25 * int(before.sum()))
    weights, grads = layer.weight.detach().clone(), layer.weight.grad.clone()
    masks.update_layer(layer, 0.25)
    after = layer.mask.bool()
    assert int(after.sum()) == int(before.sum())
    smallest = torch.where(before, weights.abs(), math.inf).flatten().argsort()[:k]  # dropped: smallest |θ|
    kept = before.clone().flatten()
    kept[smallest] = False
    kept = kept.view(before.shape)
    largest = torch.where(kept, -math.inf, grads.abs()).flatten().argsort(descending=True)[:k]
    grown = torch.zeros_like(kept).flatten()
    grown[largest] = True  # regrown: the largest dense gradients anywhere outside the kept weights
    grown = grown.view(before.shape)
    assert torch.equal(after, kept | grown)
    new = grown & ~before  # grown where no weight was: starts at zero
    again = grown & before  # dropped and regrown by the same update
    assert torch.count_nonzero(layer.weight[new]) == 0 and again.any()
    if regrown == "keep":  # the reference code's: the weight goes on as it was
        assert torch.equal(layer.weight[again], weights[again]) and torch.count_nonzero(weights[again]) > 0
    else:
        assert torch.count_nonzero(layer.weight[again]) == 0
    assert torch.equal(layer.weight[kept], weights[kept])


def test_set_regrows_where_the_seed_says(synthetic):
    def regrown(seed: int) -> torch.Tensor:
        model, masks = _dynamic(synthetic, "set", seed=0)
        Training(model, parse_trial({}).train, masks)
        masks.generator.manual_seed(seed)
        layer = model.weight_layers[0]
        before = layer.mask.bool().clone()
        masks.update_layer(layer, 0.3)
        return layer.mask.bool() & ~before

    assert torch.equal(regrown(1), regrown(1)) and not torch.equal(regrown(1), regrown(2))


def test_imp_rewinds_the_kept_weights_to_the_saved_ones_and_restarts_the_optimizer(synthetic):
    cfg = config("imp", levels=3, rewind_epoch=0)
    splits = make_splits(synthetic, cfg.dataset, 0)
    model, masks = methods.start(cfg, splits, torch.device("cpu"))
    training = Training(model, cfg.train, masks)
    initial = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("mask")}
    for epoch in range(1, 4):  # level 0 trains the dense net
        train_epoch(training, splits.train, epoch)
    trained = [layer.weight.detach().clone() for layer in model.weight_layers]
    optimizer = training.optimizer
    masks.before_epoch(4)  # the first epoch of level 1: prune, rewind, restart
    assert training.optimizer is not optimizer
    wanted = targets(cfg)
    for i, layer in enumerate(model.weight_layers):
        mask = layer.mask.bool()
        assert int(mask.sum()) == round(layer.total_weights * (wanted[i] / layer.total_weights) ** (1 / 3))
        assert trained[i].abs()[~mask].max() <= trained[i].abs()[mask].min()  # the largest |θ| stayed
        name = next(k for k, p in model.named_parameters() if p is layer.weight)
        assert torch.equal(layer.weight.detach(), initial[name] * layer.mask)  # rewound, inside the mask
    biases = [k for k in initial if k.endswith("bias")]
    assert all(torch.equal(model.state_dict()[k], initial[k]) for k in biases)


@pytest.mark.parametrize("method", ["shuffle", "snip", "grasp", "synflow", "set"])
def test_the_same_seed_gives_the_same_masks_and_another_seed_others(synthetic, method):
    def masks_of(seed: int) -> list[torch.Tensor]:
        cfg = parse_trial(
            {**config_to_dict(config(method)), "train": {"seed": seed, "epochs": 1, "batch_size": 64}}
        )
        outcome = train_trial(cfg, data=synthetic)
        return [layer.dense_mask().bool() for layer in outcome.model.weight_layers]

    a, b, c = masks_of(0), masks_of(0), masks_of(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, z) for x, z in zip(a, c, strict=True))


GRID = """
name: methods
kind: grid
dataset: {name: synthetic}
model: {widths: [32, 16]}
train: {optimizer: momentum, lr: 0.05, epochs: 2, batch_size: 64}
egf: {samples: 128}
sparsity: {update_every: 10, levels: 1}
grid:
  seeds: [0]
  dense_reference: true
  axes: {sparsity.method: [random, snip, rigl, imp], model.densities: [0.2, 0.05]}
"""


@pytest.mark.slow
def test_a_method_is_a_grid_axis_and_the_report_compares_them(cli, tmp_path):
    result = cli("run", write_spec(tmp_path / "g.yaml", GRID), "--results", tmp_path / "r")
    assert result.code == 0, result.err
    store = ResultsStore(tmp_path / "r")
    trials = store.rows("trials", "methods")
    sparse = [t for t in trials if t["role"] == "sparse"]
    dense = [t for t in trials if t["role"] == "dense"]
    assert len(sparse) == 8 and len(dense) == 2  # one dense reference per density, whatever the method
    assert {t["method"] for t in sparse} == {"random", "snip", "rigl", "imp"} and all(
        t["status"] == "done" for t in trials
    )
    for t in sparse:
        partner = next(d for d in dense if d["trial_key"] == t["pair_id"])
        assert partner["depth"] == t["depth"] and partner["density"] == 1.0
        assert abs(partner["widths"][0] - 2 * partner["widths"][1]) <= 1  # the 32:16 proportion, narrower
        assert partner["widths"][0] < 32
        if t["method"] in ("rigl", "imp"):
            assert t["layer_backends"] == ["masked"] * 3  # masks that change train masked
    imp = next(t for t in sparse if t["method"] == "imp")
    assert imp["epochs_done"] == 4  # two levels of two epochs
    key = imp["trial_key"]
    levels = query(
        store, f"SELECT level, count(*) AS n FROM epochs WHERE trial_key = '{key}' GROUP BY 1 ORDER BY 1"
    )
    assert levels.to_dict("records") == [{"level": 0, "n": 3}, {"level": 1, "n": 2}]
    report = cli("report", "methods", "--results", tmp_path / "r", "--out", tmp_path / "report")
    assert report.code == 0, report.err
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Mask methods" in text and (tmp_path / "report" / "methods.png").stat().st_size > 10_000
    assert "Table `methods_tests`" in text


@pytest.mark.slow
def test_a_method_is_a_fixed_setting_of_a_search(cli, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        """
name: searched-snip
kind: snas
dataset: {name: synthetic}
model: {widths: [32]}
train: {epochs: 1, batch_size: 64}
egf: {samples: 128}
sparsity: {method: snip}
search: {num_samples: 3, sampler: random, density_levels: [0.1, 0.5], seed: 0}
""",
    )
    result = cli("run", spec, "--results", tmp_path / "r")
    assert result.code == 0, result.err
    trials = ResultsStore(tmp_path / "r").rows("trials", "searched-snip")
    assert trials and {t["method"] for t in trials} == {"snip"}


def test_a_result_recorded_under_the_old_per_layer_default_never_stands_for_the_new_global_one(cli, tmp_path):
    """SNIP now ranks all layers together by default; a trial trained per layer (the old default, and what
    its rows mean) counts as done for an explicit `scope: layer` only."""
    spec = tmp_path / "snip.yaml"
    spec.write_text(
        "name: snip-default\nkind: single\ndataset: {name: synthetic, subset: 128}\n"
        "model: {widths: [16], densities: 0.2}\ntrain: {epochs: 1, batch_size: 64}\negf: {samples: 32}\n"
        "sparsity: {method: snip}\n"
    )
    results = str(tmp_path / "r")
    assert cli("train", str(spec), "--set", "sparsity.scope=layer", "--results", results).code == 0
    (row,) = ResultsStore(results).rows("trials", "snip-default")
    assert row["scope"] == "layer" and json.loads(row["method_settings"])["scope"] == "layer"
    new_default = cli("run", str(spec), "--dry-run", "--results", results)
    assert "1 planned (one trial); 0 done already; 1 to run" in new_default.out, new_default.out
    per_layer = cli("run", str(spec), "--set", "sparsity.scope=layer", "--dry-run", "--results", results)
    assert "0 done already" not in per_layer.out and "1 done already" in per_layer.out, per_layer.out
