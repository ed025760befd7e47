"""Mask methods: a RigL epoch against a static-mask epoch, and the scoring of pruning at initialisation
(SNIP, GraSP, SynFlow with its 100 rounds) against one training epoch, on the reference MLP at 10%; and the
global ranking those methods end in, on a ResNet-18's 11 million weights, against a full sort."""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
import torchvision

from sweep.bench.harness import REFERENCE, Result, Settings, Trainer, alternate, paired
from sweep.core.data import Splits
from sweep.core.epoch import train_epoch
from sweep.core.masks import methods
from sweep.core.masks.selection import keep_top
from sweep.core.models import weight_shapes
from sweep.core.train import Training
from sweep.spec import SparsitySpec, TrainSpec, TrialConfig

TCFG = TrainSpec(optimizer="momentum", lr=0.05)
LONG = dataclasses.replace(TCFG, epochs=10_000)  # RigL keeps updating through every measured epoch


def rigl_cost(splits: Splits, settings: Settings) -> Result:
    """An epoch of RigL (an update every 100 steps, its default) against an epoch with a fixed mask."""
    config = TrialConfig(model=REFERENCE, train=LONG, sparsity=SparsitySpec(method="rigl"))
    model, masks = methods.start(config, splits, settings.device)
    rigl = Training(model, LONG, masks)
    static = Trainer(REFERENCE, splits, settings, TCFG)
    steps = math.ceil(len(splits.train) / LONG.batch_size)
    epochs = itertools.count(1)

    def rigl_epoch() -> None:
        epoch = next(epochs)
        train_epoch(rigl, splits.train, epoch, (epoch - 1) * steps)

    times_a, times_b = alternate(rigl_epoch, lambda: static.epoch(splits.train), settings, _repeats(settings))
    return paired(
        times_a, times_b, "rigl epoch s", "static epoch s", {"updates_per_epoch": steps // masks.every}
    )


QUICK_SYNFLOW_ROUNDS = 10  # quick mode: a tenth of SynFlow's rounds (its cost is linear in them)


def scoring_cost(method: str, splits: Splits, settings: Settings) -> Result:
    """Choosing the masks with `method` on the dense initial net, against one training epoch (in quick mode
    SynFlow runs a tenth of its rounds: the figure then shows that it runs, not what it costs)."""
    rounds = {"synflow_rounds": QUICK_SYNFLOW_ROUNDS} if settings.quick and method == "synflow" else {}
    config = TrialConfig(model=REFERENCE, train=TCFG, sparsity=SparsitySpec(method=method, **rounds))
    static = Trainer(REFERENCE, splits, settings, TCFG)
    shapes = weight_shapes(REFERENCE, splits.input_shape, splits.num_classes)
    counts = [round(0.1 * math.prod(shape)) for shape in shapes]

    def score() -> None:
        methods.initial_masks(config, REFERENCE, splits, settings.device, counts)

    times_a, times_b = alternate(score, lambda: static.epoch(splits.train), settings, _repeats(settings))
    return paired(times_a, times_b, f"{method} scoring s", "training epoch s", dict(rounds))


def ranking_cost(settings: Settings) -> Result:
    """A ResNet-18's best 10% of weights kept by one global threshold (`keep_top`, as SNIP, GraSP and each of
    SynFlow's rounds keep them) against ranking every score by a full sort (`kept_by_sort`), on the same
    scores and seed; both keep the same weights, which is checked first. Quick: an eighth of the weights."""
    shapes = [p.shape for p in torchvision.models.resnet18().parameters() if p.dim() > 1]
    generator = torch.Generator().manual_seed(0)
    scores = [torch.rand(shape, generator=generator) for shape in shapes]
    if settings.quick:
        scores = [s.reshape(-1)[: max(1, s.numel() // 8)] for s in scores]
    counts = [max(1, round(0.1 * s.numel())) for s in scores]

    def by_threshold() -> torch.Tensor:
        masks = keep_top(scores, counts, "global", torch.Generator().manual_seed(1))
        return torch.cat([m.reshape(-1) for m in masks]).bool()

    def by_sort() -> torch.Tensor:
        return kept_by_sort(
            torch.cat([s.reshape(-1) for s in scores]), sum(counts), torch.Generator().manual_seed(1)
        )

    if not torch.equal(by_threshold(), by_sort()):
        raise AssertionError("keep_top and a full sort kept different weights")
    times_a, times_b = alternate(by_sort, by_threshold, settings, _repeats(settings), warmup=False)
    return paired(times_a, times_b, "full sort s", "threshold s", {"scores": sum(s.numel() for s in scores)})


def kept_by_sort(values: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Which `count` of `values` rank highest, by sorting them all: equal values in the order of a seeded
    shuffle, as `keep_top` orders them (the plain way, and the reference its tests compare with)."""
    shuffle = torch.randperm(values.numel(), generator=generator)
    order = shuffle[torch.argsort(values[shuffle].double(), descending=True, stable=True)]
    chosen = torch.zeros(values.numel(), dtype=torch.bool)
    chosen[order[:count]] = True
    return chosen


def _repeats(settings: Settings) -> int:
    return 3 if settings.quick else 7  # whole epochs: fewer, longer samples
