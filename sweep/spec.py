"""Specs: YAML in, frozen and validated dataclasses out.

Every error names the field, the value and what is allowed. Unknown keys are errors. A `TrialConfig` is
what one trial needs (data, model, training, gradient-flow probe); a `SweepSpec` adds the sweep around it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import operator
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from sweep.errors import SpecError

DATASETS = ("fashion_mnist", "mnist", "cifar10", "cifar100", "synthetic")
FAMILIES = ("mlp", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "selu", "elu", "tanh", "sigmoid", "swish", "gelu")
INITS = ("kaiming_uniform", "kaiming_normal", "xavier_uniform")
MASKS = ("uniform", "erk", "dense")
BACKENDS = ("auto", "masked", "sparse")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine")
AUGMENTS = ("none", "flip_crop")
DEVICES = ("auto", "cpu", "cuda")
KINDS = ("single", "snas", "sc_sdc")
SAMPLERS = ("tpe", "nsga2", "random")
METRICS = ("val_acc", "test_acc")
SCHEDULERS = ("none", "asha")
DEFAULT_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _opt(**rules: Any) -> dict[str, Any]:
    return {"rules": rules}


@dataclass(frozen=True)
class DatasetSpec:
    name: str = field(default="fashion_mnist", metadata=_opt(choices=DATASETS))
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = field(default=0.1, metadata=_opt(ge=0.0, lt=1.0))
    subset: int | None = field(default=None, metadata=_opt(gt=0))
    test_subset: int | None = field(default=None, metadata=_opt(gt=0))


@dataclass(frozen=True)
class ModelSpec:
    family: str = field(default="mlp", metadata=_opt(choices=FAMILIES))
    widths: tuple[int, ...] = field(default=(300, 100), metadata=_opt(gt=0, nonempty=True))
    activation: str = field(default="relu", metadata=_opt(choices=ACTIVATIONS))
    batchnorm: bool = False
    dropout: float = field(default=0.0, metadata=_opt(ge=0.0, lt=1.0))
    skip: bool = False
    init: str = field(default="kaiming_uniform", metadata=_opt(choices=INITS))
    init_widths: tuple[int, ...] | None = field(default=None, metadata=_opt(gt=0, nonempty=True))
    mask: str = field(default="uniform", metadata=_opt(choices=MASKS))
    densities: float | tuple[float, ...] = field(default=0.1, metadata=_opt(gt=0.0, le=1.0, nonempty=True))
    backend: str = field(default="auto", metadata=_opt(choices=BACKENDS))

    @property
    def num_weight_layers(self) -> int:
        """Hidden layers (linear or conv) plus the linear output layer."""
        return len(self.widths) + 1


@dataclass(frozen=True)
class TrainSpec:
    optimizer: str = field(default="sgd", metadata=_opt(choices=OPTIMIZERS))
    lr: float = field(default=0.1, metadata=_opt(gt=0.0))
    momentum: float = field(default=0.9, metadata=_opt(ge=0.0, lt=1.0))
    nesterov: bool = False
    weight_decay: float = field(default=0.0, metadata=_opt(ge=0.0))
    schedule: str = field(default="none", metadata=_opt(choices=SCHEDULES))
    step_size: int | None = field(default=None, metadata=_opt(gt=0))
    gamma: float = field(default=0.1, metadata=_opt(gt=0.0, le=1.0))
    epochs: int = field(default=20, metadata=_opt(gt=0))
    batch_size: int = field(default=128, metadata=_opt(gt=0))
    augment: str = field(default="none", metadata=_opt(choices=AUGMENTS))
    seed: int = field(default=0, metadata=_opt(ge=0))
    device: str = field(default="auto", metadata=_opt(choices=DEVICES))


@dataclass(frozen=True)
class EgfSpec:
    samples: int = field(default=2048, metadata=_opt(gt=0))
    mode: str = field(default="eval", metadata=_opt(choices=("eval", "train")))


@dataclass(frozen=True)
class SearchSpec:
    num_samples: int = field(default=64, metadata=_opt(gt=0))
    sampler: str = field(default="tpe", metadata=_opt(choices=SAMPLERS))
    density_levels: tuple[float, ...] = field(
        default=DEFAULT_LEVELS, metadata=_opt(gt=0.0, le=1.0, nonempty=True)
    )
    max_depth: int | None = field(default=None, metadata=_opt(gt=0))
    widths: tuple[int, ...] | None = field(default=None, metadata=_opt(gt=0, nonempty=True))
    max_active_weights: int | None = field(default=None, metadata=_opt(gt=0))
    warm_start_density: float | None = field(default=0.1, metadata=_opt(gt=0.0, le=1.0))
    metric: str = field(default="val_acc", metadata=_opt(choices=METRICS))
    scheduler: str = field(default="none", metadata=_opt(choices=SCHEDULERS))
    seed: int = field(default=0, metadata=_opt(ge=0))
    baselines: bool = False
    baseline_seeds: tuple[int, ...] = field(default=(), metadata=_opt(ge=0))


@dataclass(frozen=True)
class GridSpec:
    sparse_width: int = field(default=1024, metadata=_opt(gt=0))
    ratios: tuple[float, ...] = field(
        default=(0.1, 0.3, 0.5, 0.7, 0.9), metadata=_opt(gt=0.0, le=1.0, nonempty=True)
    )
    depths: tuple[int, ...] = field(default=(1, 2, 4), metadata=_opt(gt=0, nonempty=True))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=_opt(ge=0, nonempty=True))
    axes: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourcesSpec:
    cpu: float = field(default=1.0, metadata=_opt(gt=0.0))
    gpu: float = field(default=0.0, metadata=_opt(ge=0.0))


@dataclass(frozen=True)
class RaySpec:
    address: str | None = None
    max_concurrent_trials: int | None = field(default=None, metadata=_opt(gt=0))
    storage: str | None = None


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs: the pure-PyTorch trainer's only input."""

    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    egf: EgfSpec = EgfSpec()

    @property
    def key(self) -> str:
        """A stable name: a hash of the settings that differ from their defaults (seed included).

        Settings that do not change the numbers (where the data lives) are left out, and a new
        setting with a default renames nothing.
        """
        flat = _flatten(config_to_dict(self))
        defaults = _flatten(config_to_dict(TrialConfig()))
        changed = {k: v for k, v in flat.items() if k not in _KEYLESS and v != defaults.get(k)}
        text = json.dumps(changed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_GRID_OWNED = frozenset({"model.widths", "model.densities", "model.mask", "model.init_widths", "train.seed"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_KEYLESS = frozenset({"dataset.data_dir", "dataset.download"})
TRIAL_SECTIONS = ("dataset", "model", "train", "egf")


@dataclass(frozen=True)
class SweepSpec:
    name: str = field(metadata=_opt(nonempty=True))
    kind: str = field(default="single", metadata=_opt(choices=KINDS))
    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    egf: EgfSpec = EgfSpec()
    search: SearchSpec | None = None
    grid: GridSpec | None = None
    resources: ResourcesSpec = ResourcesSpec()
    ray: RaySpec = RaySpec()

    @property
    def trial(self) -> TrialConfig:
        """The spec's own trial: the template that SNAS and SC-SDC vary."""
        return TrialConfig(self.dataset, self.model, self.train, self.egf)


# ---------------------------------------------------------------------------------------------- parsing


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> SweepSpec:
    """Read a YAML spec, apply `KEY=VALUE` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    except OSError as exc:
        raise SpecError(f"spec file {path} cannot be read: {exc.strerror}") from None
    return parse_spec(apply_overrides(read_yaml(text, str(path)), overrides))


def read_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse a spec's YAML text; errors name the source and the line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: YAML does not parse: {problem}") from None
    if data is None:
        raise SpecError(f"{source}: the spec is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `a.b.c=VALUE` overrides; VALUE is parsed as YAML. `grid.axes.<dotted key>` names one axis."""
    result = json.loads(json.dumps(raw, default=list))  # a deep copy that owns its lists
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, for example --set train.epochs=1")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise SpecError(f"--set {key}: value {text!r} does not parse as YAML") from None
        parts = key.split(".")
        if parts[:2] == ["grid", "axes"] and len(parts) > 2:
            parts = ["grid", "axes", ".".join(parts[2:])]
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(f"--set {key}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def parse_spec(raw: Mapping[str, Any]) -> SweepSpec:
    spec = _build(SweepSpec, raw, "")
    if not _NAME.fullmatch(spec.name):
        raise SpecError(f"name: {spec.name!r} is not allowed; use letters, digits, '.', '_' and '-' only")
    _check_model(spec.model, "model")
    if spec.kind == "snas" and spec.grid is not None:
        raise SpecError("grid: a grid belongs to kind sc_sdc; kind snas takes a search section")
    if spec.kind == "sc_sdc" and spec.search is not None:
        raise SpecError("search: a search belongs to kind snas; kind sc_sdc takes a grid section")
    if spec.kind == "single" and (spec.grid is not None or spec.search is not None):
        raise SpecError("kind: single takes neither grid nor search; use kind snas or sc_sdc")
    if spec.kind == "snas" and spec.search is None:
        spec = dataclasses.replace(spec, search=SearchSpec())
    if spec.search is not None and spec.search.baseline_seeds and not spec.search.baselines:
        raise SpecError(
            f"search.baseline_seeds: {list(spec.search.baseline_seeds)} needs search.baselines: true"
        )
    if spec.kind == "sc_sdc":
        spec = dataclasses.replace(spec, grid=_check_grid(spec.grid or GridSpec()))
    return spec


def parse_trial(raw: Mapping[str, Any]) -> TrialConfig:
    config = _build(TrialConfig, raw, "")
    _check_model(config.model, "model")
    return config


def with_settings(config: TrialConfig, settings: Mapping[str, Any]) -> TrialConfig:
    """A copy of `config` with dotted-key settings applied and validated."""
    raw = config_to_dict(config)
    for key, value in settings.items():
        section, _, name = key.partition(".")
        if section not in TRIAL_SECTIONS or not name:
            raise SpecError(
                f"{key}: not a trial setting; use one of the sections {', '.join(TRIAL_SECTIONS)}"
            )
        raw[section][name] = value
    return parse_trial(raw)


def config_to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass spec as plain YAML/JSON data (tuples become lists)."""
    return _plain(dataclasses.asdict(obj))


def spec_to_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(config_to_dict(spec), sort_keys=False)


def _check_model(model: ModelSpec, path: str) -> None:
    layers = model.num_weight_layers
    if isinstance(model.densities, tuple) and len(model.densities) != layers:
        raise SpecError(
            f"{path}.densities: {list(model.densities)} has {len(model.densities)} entries, but the model "
            f"has {layers} weight layers ({len(model.widths)} hidden + output); "
            f"give {layers} densities or one float"
        )
    if model.mask == "erk" and isinstance(model.densities, tuple):
        raise SpecError(f"{path}.densities: mask erk takes one overall density, got a list")
    if model.init_widths is not None and len(model.init_widths) != len(model.widths):
        raise SpecError(
            f"{path}.init_widths: {list(model.init_widths)} must have one entry per hidden layer "
            f"({len(model.widths)})"
        )


def _check_grid(grid: GridSpec) -> GridSpec:
    """Axis names are trial settings; `a+b` links settings that vary together (values are lists)."""
    for name, values in grid.axes.items():
        keys = axis_keys(name)
        for key in keys:
            section, _, leaf = key.partition(".")
            if section not in TRIAL_SECTIONS or not leaf:
                raise SpecError(f"grid.axes.{name}: an axis is a trial setting such as train.optimizer")
            cls = {"dataset": DatasetSpec, "model": ModelSpec, "train": TrainSpec, "egf": EgfSpec}[section]
            known = [f.name for f in dataclasses.fields(cls)]
            if leaf not in known:
                raise SpecError(f"grid.axes.{name}: unknown setting {key}{_suggest(leaf, known)}")
            if key in _GRID_OWNED:
                raise SpecError(
                    f"grid.axes.{name}: {key} is set by the grid itself (sparse_width, ratios, depths, seeds)"
                )
        if not values:
            raise SpecError(f"grid.axes.{name}: an axis needs at least one value")
        if len(keys) > 1:
            for value in values:
                if not isinstance(value, list | tuple) or len(value) != len(keys):
                    raise SpecError(
                        f"grid.axes.{name}: each value must be a list of {len(keys)} "
                        f"({', '.join(keys)}), got {value!r}"
                    )
    return grid


def axis_keys(name: str) -> list[str]:
    """The settings an axis sets: `train.optimizer+train.lr` sets two at once."""
    return [key.strip() for key in name.split("+")]


# ------------------------------------------------------------------------------ generic typed conversion


def _build(cls: type, raw: Any, path: str) -> Any:
    where = path or "spec"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping of settings, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            name = f"{path}.{key}" if path else str(key)
            raise SpecError(
                f"{name}: unknown key{_suggest(str(key), list(fields))}; allowed: {', '.join(fields)}"
            )
    values = {}
    for name, f in fields.items():
        full = f"{path}.{name}" if path else name
        if name in raw:
            values[name] = _convert(raw[name], hints[name], full, f.metadata.get("rules", {}))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{full}: required, but missing")
    return cls(**values)


def _convert(value: Any, hint: Any, path: str, rules: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise SpecError(f"{path}: a value is required, got null")
        errors = []
        for option in (o for o in options if o is not type(None)):
            if _shape_matches(value, option):
                return _convert(value, option, path, rules)
            errors.append(_describe(option))
        raise SpecError(f"{path}: expected {' or '.join(errors)}, got {_show(value)}")
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"{path}: expected {_describe(hint)}, got {_show(value)}")
        if rules.get("nonempty") and not value:
            raise SpecError(f"{path}: expected a non-empty list")
        item = typing.get_args(hint)[0]
        return tuple(_convert(v, item, f"{path}[{i}]", rules) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: expected a mapping, got {_show(value)}")
        out = {}
        for key, items in value.items():
            if not isinstance(items, list | tuple):
                raise SpecError(f"{path}.{key}: expected a list of values, got {_show(items)}")
            out[str(key)] = tuple(items)
        return out
    return _check_scalar(_coerce_scalar(value, hint, path), path, rules)


def _shape_matches(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list | tuple)
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return isinstance(value, Mapping)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _coerce_scalar(value: Any, hint: Any, path: str) -> Any:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    if hint is str and isinstance(value, str):
        return value
    if hint is Any:
        return value
    raise SpecError(f"{path}: expected {_describe(hint)}, got {_show(value)}")


def _check_scalar(value: Any, path: str, rules: Mapping[str, Any]) -> Any:
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        raise SpecError(f"{path}: {value!r} is not allowed; choose one of {', '.join(choices)}")
    if rules.get("nonempty") and isinstance(value, str) and not value.strip():
        raise SpecError(f"{path}: must not be empty")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and any(name in rules and not test(value, rules[name]) for name, test, _ in _BOUNDS):
        allowed = " and ".join(f"{sign} {rules[name]}" for name, _, sign in _BOUNDS if name in rules)
        raise SpecError(f"{path}: {value!r} is out of range; allowed: {allowed}")
    return value


_BOUNDS = (
    ("gt", operator.gt, ">"),
    ("ge", operator.ge, ">="),
    ("lt", operator.lt, "<"),
    ("le", operator.le, "<="),
)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}s"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
