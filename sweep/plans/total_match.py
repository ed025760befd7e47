"""SC-SDC with total matching (`grid.match: total`): a pair for any model family, matched on all its weights.

The ratio means what it means in the per-layer grid, a ratio of widths: the dense partner is the spec's model
with its width knob (`model.width_key`, e.g. `kwargs.widen_factor`) at w_D = round(r × w_S), w_S the knob's
value in the spec (its builder's default where the spec leaves it out). The sparse net is the spec's model as
given, every masked layer at one uniform density d = (D − F) / M: D the dense partner's weights (every
maskable layer, Σ prod(shape)), F the weights of the layers `model.dense_layers` keeps at density 1 (counted
in both totals), M the weights of the other layers. Whole active counts per layer leave a small difference,
recorded on both trials of the pair as `capacity_mismatch` = (sparse active − D) / D. Each net keeps its own
initialisation. For mlp and cnn the knob is the hidden width: `[grid.sparse_width] * depth` against
`[w_D] * depth` for each of `grid.depths`, the sparse net's active weights drawn with the dense net's fans.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sweep.core.data import dataset_shape
from sweep.core.masks import active_weights
from sweep.core.models import model_densities, weight_shapes
from sweep.core.wrn import WideResNet
from sweep.core.zoo import dense_flags, factory_function
from sweep.errors import SpecError
from sweep.plans.sc_sdc import cells, dense_width
from sweep.plans.types import PlannedTrial, TrialMeta
from sweep.spec import GridSpec, ModelSpec, SweepSpec, TrialConfig, with_settings

_BUILT_IN_ONLY = ("sparse_width", "depths")  # grid keys that describe an mlp or a cnn
_SET_BY_DATA = ("input_shape", "num_classes")  # builder arguments the data sets, never a width


def total_match_trials(spec: SweepSpec) -> list[PlannedTrial]:
    """Every cell's sparse net and its dense partner of (as near as whole widths and counts allow) the
    same total of weights; `pair_id` is the dense partner's key, as in the per-layer grid."""
    grid, model = spec.grid or GridSpec(), spec.model
    _check_family(grid, model)
    planned: list[PlannedTrial] = []
    for ratio, depth, seed, settings in cells(grid, grid.ratios, grid.depths if model.built_in else [None]):
        cell = {"ratio": ratio, **({"depth": depth} if depth else {}), "seed": seed, **settings}
        base = _trial(spec.trial, {**settings, "train.seed": seed}, cell)
        sparse_width, dense_knob = _widths(base.model, grid, ratio, depth)
        shape, classes = dataset_shape(base.dataset)
        sparse = _trial(base, {**sparse_width, "model.mask": "uniform", "model.densities": 1.0}, cell)
        model_densities(sparse.model, shape, classes)  # the spec's own model first: its mistakes are its own
        dense = _trial(base, {**dense_knob, "model.mask": "dense", "model.densities": 1.0}, cell)
        target = dense_weights(dense.model, shape, classes)
        density = uniform_density(sparse.model, shape, classes, target)
        sparse = _trial(sparse, {"model.densities": density}, cell)
        shapes = weight_shapes(sparse.model, shape, classes)
        mismatch = (active_weights(model_densities(sparse.model, shape, classes), shapes) - target) / target
        planned += [
            PlannedTrial(config, TrialMeta("sc_sdc", role, dense.key, capacity_mismatch=mismatch))
            for role, config in (("sparse", sparse), ("dense", dense))
        ]
    return planned


def dense_weights(model: ModelSpec, input_shape: Sequence[int], classes: int) -> int:
    """The weights of every maskable layer of the model (Σ prod(shape)); a builder that refuses the
    narrower knob is one line naming `model.width_key`."""
    try:
        shapes = weight_shapes(model, input_shape, classes)
    except SpecError as exc:
        if model.built_in:
            raise
        raise SpecError(f"model.width_key: {model.width_key} at the dense width: {exc}") from None
    return sum(math.prod(s) for s in shapes)


def uniform_density(model: ModelSpec, input_shape: Sequence[int], classes: int, target: int) -> float:
    """The one density of the masked layers that gives the model `target` active weights in all (the
    layers `model.dense_layers` names keep every weight)."""
    shapes = weight_shapes(model, input_shape, classes)
    fixed = [False] * len(shapes) if model.built_in else dense_flags(model, input_shape, classes)
    kept = sum(math.prod(s) for s, dense in zip(shapes, fixed, strict=True) if dense)
    masked = sum(math.prod(s) for s, dense in zip(shapes, fixed, strict=True) if not dense)
    density = (target - kept) / masked
    if density <= 0.0:
        raise SpecError(
            f"grid.ratios: a dense partner of {target} weights leaves nothing to mask: the sparse model's "
            f"dense_layers keep {kept}; choose a larger ratio or fewer dense_layers"
        )
    if density > 1.0:
        raise SpecError(
            f"grid.ratios: a dense partner of {target} weights has more than the sparse model's "
            f"{kept + masked}; the ratio must narrow the model"
        )
    return density


def _trial(config: TrialConfig, settings: Mapping[str, Any], cell: dict) -> TrialConfig:
    try:
        return with_settings(config, settings)
    except SpecError as exc:
        raise SpecError(f"grid: the cell {cell} gives an invalid trial: {exc}") from None


def _check_family(grid: GridSpec, model: ModelSpec) -> None:
    if model.built_in:
        if model.width_key is not None:
            raise SpecError(
                f"model.width_key: family {model.family} takes its width from grid.sparse_width; leave it out"
            )
        return
    for key in _BUILT_IN_ONLY:
        if getattr(grid, key) != getattr(GridSpec(), key):
            raise SpecError(
                f"grid.{key}: describes an mlp or a cnn; a {model.family} model is set by model.kwargs and "
                "scaled by model.width_key"
            )


def _widths(model: ModelSpec, grid: GridSpec, ratio: float, depth: int | None) -> tuple[dict, dict]:
    """The settings that give the sparse net its width and the dense partner its narrower one."""
    if model.built_in:
        wide, narrow = grid.sparse_width, dense_width(grid.sparse_width, ratio)
        sparse = {"model.widths": [wide] * depth, "model.init_widths": [narrow] * depth}
        return sparse, {"model.widths": [narrow] * depth, "model.init_widths": None}
    path, wide = width_knob(model)
    narrow = round(ratio * wide)
    if narrow < 1:
        raise SpecError(
            f"grid.ratios: {ratio} × {model.width_key} {wide} rounds to a dense width of {narrow}; the "
            f"narrowest dense partner has width 1 (ratios above {0.5 / wide:.3g})"
        )
    kwargs = copy.deepcopy(dict(model.kwargs))
    node = kwargs
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = narrow
    return {}, {"model.kwargs": kwargs}


def width_knob(model: ModelSpec) -> tuple[list[str], int]:
    """The path of `model.width_key` inside `model.kwargs` and the knob's value (from the spec, or the
    builder's default), a positive integer; anything else is one line naming the field."""
    key = model.width_key or ""
    section, _, rest = key.partition(".")
    path = rest.split(".")
    if section != "kwargs" or not all(path):
        raise SpecError(
            f"model.width_key: {key!r} must name a builder argument in model.kwargs, for example "
            "kwargs.widen_factor"
        )
    node: Any = model.kwargs
    for name in path:
        node = node.get(name) if isinstance(node, Mapping) else None
    parameters = _parameters(model)
    if parameters is not None and path[0] not in parameters and "**" not in parameters:
        raise SpecError(
            f"model.width_key: {_what(model)} takes no argument {path[0]!r} "
            f"(it takes {', '.join(p for p in parameters if p != '**') or 'none'})"
        )
    if node is None and len(path) == 1 and parameters and path[0] in parameters:
        node = parameters[path[0]]  # the builder's default
    if isinstance(node, bool) or not isinstance(node, int) or node < 1:
        given = "is not set in model.kwargs" if node is None else f"is {node!r}"
        raise SpecError(f"model.width_key: {key} {given}; SC-SDC scales a positive integer width")
    return path, node


def _parameters(model: ModelSpec) -> dict[str, Any] | None:
    """The builder's keyword arguments and their defaults (`**` where it takes any), where known."""
    if model.family == "wrn":
        builder: Any = WideResNet
    elif model.family == "factory":
        builder = factory_function(model.factory)
    else:
        return None  # a torchvision or timm builder passes its kwargs on: building it tells
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return None
    found: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            found["**"] = None
        elif parameter.kind is not parameter.VAR_POSITIONAL and name not in _SET_BY_DATA:
            found[name] = None if parameter.default is parameter.empty else parameter.default
    return found


def _what(model: ModelSpec) -> str:
    return "the Wide ResNet" if model.family == "wrn" else f"factory {model.factory}"
