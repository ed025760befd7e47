"""The mask methods, one key each (`sparsity.method`): the masks a trial starts with, and how they change.

| method | masks at the start | while training |
|---|---|---|
| random | at random, at the allocation's counts (uniform, ERK, a list) | fixed |
| shuffle | the per-layer counts `shuffle_of` finds, placed at random (Frankle et al., 2021) | fixed |
| snip, grasp, synflow | the highest scores on the dense initial net (`pruning_at_init`) | fixed |
| set, rigl | at random, at the allocation's counts | drop and regrow (`dynamic`) |
| gmp, imp | dense | magnitude pruning to the allocation's counts (`magnitude`) |

Every method keeps exactly the allocation's count in every layer, unless `scope: global` lets it allocate
across layers (one threshold, the total kept). Methods whose masks change train those layers masked.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from sweep.core.data import Split, Splits, dataset_shape
from sweep.core.masks.allocation import active_count
from sweep.core.masks.dynamic import DynamicSparse
from sweep.core.masks.magnitude import GradualMagnitude, IterativeMagnitude, imp_levels
from sweep.core.masks.pruning_at_init import grasp_scores, snip_scores, synflow_masks
from sweep.core.masks.random import random_mask
from sweep.core.masks.schedule import MaskSchedule
from sweep.core.masks.selection import fixed_layers, keep_top, pinned
from sweep.core.models import SparseNet, build_model, model_densities, weight_shapes
from sweep.spec import MASKS_CHANGE, ModelSpec, TrialConfig

_SCORE_STREAM = 4


def start(
    config: TrialConfig,
    splits: Splits,
    device: torch.device,
    layer_masks: Sequence[torch.Tensor] | None = None,
) -> tuple[SparseNet, MaskSchedule]:
    """The trial's model with the masks its method chose (or `layer_masks`, a checkpoint's), and the
    schedule that changes them while it trains."""
    spec, sparsity = config.model, config.sparsity
    if sparsity.method in MASKS_CHANGE:
        spec = dataclasses.replace(spec, backend="masked")  # sparse kernels keep a fixed mask
    shapes = weight_shapes(spec, splits.input_shape, splits.num_classes)
    densities = model_densities(spec, splits.input_shape, splits.num_classes)
    counts = [active_count(d, math.prod(s)) for d, s in zip(densities, shapes, strict=True)]
    if layer_masks is None:
        layer_masks = initial_masks(config, spec, splits, device, counts)
    model = build_model(
        spec, splits.input_shape, splits.num_classes, config.train.seed, device.type, layer_masks
    )
    return model.to(device), mask_schedule(config, counts, [math.prod(s) for s in shapes], len(splits.train))


def initial_masks(
    config: TrialConfig, spec: ModelSpec, splits: Splits, device: torch.device, counts: Sequence[int]
) -> list[torch.Tensor] | None:
    """The masks a method starts from; None for random ones at the counts (drawn as the model is built)."""
    sparsity, seed = config.sparsity, config.train.seed
    shapes = weight_shapes(spec, splits.input_shape, splits.num_classes)
    if sparsity.method in ("random", "set", "rigl"):
        return None
    if sparsity.method in ("gmp", "imp"):
        return [torch.ones(shape) for shape in shapes]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + _SCORE_STREAM)
    dense_spec = dataclasses.replace(spec, backend="masked")
    everything = [torch.ones(shape) for shape in shapes]
    dense = build_model(dense_spec, splits.input_shape, splits.num_classes, seed, device.type, everything)
    dense = dense.to(device)
    scorer = sparsity.shuffle_of if sparsity.method == "shuffle" else sparsity.method
    scope = sparsity.effective_scope
    if scorer == "synflow":
        masks = synflow_masks(dense, splits.input_shape, counts, sparsity, generator)
    else:
        if scorer == "snip":
            x, y = scoring_batch(splits.train, sparsity.score_batch, generator)
            scores = snip_scores(dense, x, y)
        else:
            x, y = per_class_batch(splits.train, sparsity.grasp_per_class, splits.num_classes, generator)
            scores = grasp_scores(dense, x, y, sparsity.grasp_temperature)
        masks = keep_top(pinned(scores, fixed_layers(dense)), counts, scope, generator)
    if sparsity.method == "shuffle":  # the method's counts per layer, each layer's weights placed at random
        return [random_mask(tuple(m.shape), int(m.sum()), generator) for m in masks]
    return masks


def planned_epochs(config: TrialConfig) -> int:
    """The epochs a trial trains, before it runs: IMP trains `train.epochs` per level, the others once."""
    if config.sparsity.method != "imp":
        return config.train.epochs
    input_shape, classes = dataset_shape(config.dataset)
    shapes = weight_shapes(config.model, input_shape, classes)
    densities = model_densities(config.model, input_shape, classes)
    counts = [active_count(d, math.prod(s)) for d, s in zip(densities, shapes, strict=True)]
    return (imp_levels(config.sparsity, counts, [math.prod(s) for s in shapes]) + 1) * config.train.epochs


def mask_schedule(
    config: TrialConfig, counts: list[int], sizes: list[int], train_samples: int
) -> MaskSchedule:
    sparsity, train = config.sparsity, config.train
    steps = math.ceil(train_samples / train.batch_size) * train.epochs
    if sparsity.method in ("set", "rigl"):
        regrow = "random" if sparsity.method == "set" else "gradient"
        return DynamicSparse(sparsity, regrow, steps, train.seed)
    if sparsity.method == "gmp":
        return GradualMagnitude(sparsity, counts, sizes, steps, train.seed)
    if sparsity.method == "imp":
        return IterativeMagnitude(sparsity, counts, sizes, train.epochs, train.seed)
    return MaskSchedule()


def scoring_batch(data: Split, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` training samples drawn from the trial's seed."""
    return data.take(torch.randperm(len(data), generator=generator)[:size].to(data.device))


def per_class_batch(
    data: Split, per_class: int, classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` training samples of every class, drawn from the trial's seed."""
    order = torch.randperm(len(data), generator=generator).to(data.device)
    labels = data.y[order]
    index = torch.cat([order[labels == c][:per_class] for c in range(classes)])
    return data.take(index)
