"""The spec's schema: every section as a frozen dataclass, with its defaults and the rules of each field.

A `TrialConfig` is what one trial needs (data, model, training, gradient-flow probe); a `SweepSpec` adds the
sweep around it. The rules (`choices`, bounds) live in each field's metadata, which `sweep.spec.convert`
applies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sweep.spec.choices import (
    ACTIVATIONS,
    AUGMENTS,
    BACKENDS,
    BUILT_IN,
    CHANNELS,
    DATASETS,
    DEFAULT_LEVELS,
    DEVICES,
    FAMILIES,
    INITS,
    KINDS,
    MASKS,
    MATCHES,
    MAX_COUNT,
    MAX_SEED,
    MAX_WEIGHTS,
    METRICS,
    OPTIMIZERS,
    PRECISIONS,
    SAMPLERS,
    SCHEDULERS,
    SCHEDULES,
    opt,
)
from sweep.spec.convert import config_to_dict, flatten
from sweep.spec.factory_source import factory_source
from sweep.spec.sparsity import SparsitySpec


@dataclass(frozen=True)
class DatasetSpec:
    name: str = field(default="fashion_mnist", metadata=opt(choices=DATASETS))
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = field(default=0.1, metadata=opt(ge=0.0, lt=1.0))
    subset: int | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT))
    test_subset: int | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT))
    image_size: int | None = field(default=None, metadata=opt(gt=0, le=4096))  # image_folder: resized to
    channels: str | None = field(default=None, metadata=opt(choices=CHANNELS))  # image_folder: rgb if unset
    factory: str | None = None  # factory: "package.module:function" returning the data (core/data_factory.py)
    kwargs: dict[str, Any] = field(default_factory=dict)  # factory: passed to it


@dataclass(frozen=True)
class ModelSpec:
    family: str = field(default="mlp", metadata=opt(choices=FAMILIES))
    widths: tuple[int, ...] = field(default=(300, 100), metadata=opt(gt=0, le=MAX_COUNT, nonempty=True))
    activation: str = field(default="relu", metadata=opt(choices=ACTIVATIONS))
    batchnorm: bool = False
    dropout: float = field(default=0.0, metadata=opt(ge=0.0, lt=1.0))
    skip: bool = False
    init: str = field(default="kaiming_uniform", metadata=opt(choices=INITS))
    init_widths: tuple[int, ...] | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT, nonempty=True))
    mask: str = field(default="uniform", metadata=opt(choices=MASKS))
    densities: float | tuple[float, ...] | dict[str, float] = field(
        default=0.1, metadata=opt(gt=0.0, le=1.0, nonempty=True)
    )  # one, one per layer, or by module-name pattern (other families)
    backend: str = field(default="auto", metadata=opt(choices=BACKENDS))
    name: str | None = None  # torchvision, timm: the builder's name (resnet18, wide_resnet50_2, ...)
    factory: str | None = None  # factory: "package.module:function", called with input_shape and num_classes
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the builder (wrn: depth, widen_factor)
    dense_layers: tuple[str, ...] = ()  # glob patterns of module names kept dense (a stem, a classifier)
    width_key: str | None = None  # SC-SDC, match total: the width knob, e.g. kwargs.widen_factor

    @property
    def built_in(self) -> bool:
        """The project's own MLP or CNN, whose layers `widths` describes."""
        return self.family in BUILT_IN

    @property
    def num_weight_layers(self) -> int:
        """Hidden layers (linear or conv) plus the linear output layer."""
        return len(self.widths) + 1


@dataclass(frozen=True)
class TrainSpec:
    optimizer: str = field(default="sgd", metadata=opt(choices=OPTIMIZERS))
    lr: float = field(default=0.1, metadata=opt(gt=0.0))
    momentum: float = field(default=0.9, metadata=opt(ge=0.0, lt=1.0))
    nesterov: bool = False
    weight_decay: float = field(default=0.0, metadata=opt(ge=0.0))
    schedule: str = field(default="none", metadata=opt(choices=SCHEDULES))
    step_size: int | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT))
    gamma: float = field(default=0.1, metadata=opt(gt=0.0, le=1.0))
    epochs: int = field(default=20, metadata=opt(gt=0, le=MAX_COUNT))
    batch_size: int = field(default=128, metadata=opt(gt=0, le=MAX_COUNT))
    augment: str = field(default="none", metadata=opt(choices=AUGMENTS))
    seed: int = field(default=0, metadata=opt(ge=0, le=MAX_SEED))
    device: str = field(default="auto", metadata=opt(choices=DEVICES))
    precision: str = field(default="fp32", metadata=opt(choices=PRECISIONS))  # the forward pass's
    checkpoint_every: int = field(
        default=1, metadata=opt(ge=0, le=MAX_COUNT)
    )  # 0: no checkpoints; changes no result


@dataclass(frozen=True)
class EgfSpec:
    samples: int = field(default=2048, metadata=opt(gt=0, le=MAX_COUNT))
    mode: str = field(default="eval", metadata=opt(choices=("eval", "train")))


@dataclass(frozen=True)
class SearchSpec:
    num_samples: int = field(default=64, metadata=opt(gt=0, le=MAX_COUNT))
    sampler: str = field(default="tpe", metadata=opt(choices=SAMPLERS))
    density_levels: tuple[float, ...] = field(
        default=DEFAULT_LEVELS, metadata=opt(gt=0.0, le=1.0, nonempty=True)
    )
    max_depth: int | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT))
    widths: tuple[int, ...] | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT, nonempty=True))
    max_active_weights: int | None = field(default=None, metadata=opt(gt=0, le=MAX_WEIGHTS))
    warm_start_density: float | None = field(default=0.1, metadata=opt(gt=0.0, le=1.0))
    metric: str = field(default="val_acc", metadata=opt(choices=METRICS))
    scheduler: str = field(default="none", metadata=opt(choices=SCHEDULERS))
    seed: int = field(default=0, metadata=opt(ge=0, le=MAX_SEED))
    baselines: bool = False
    baseline_seeds: tuple[int, ...] = field(default=(), metadata=opt(ge=0, le=MAX_SEED))
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # one density per group of modules
    warm_start_from: tuple[str, ...] = ()  # earlier sweeps in the same results whose trials seed the sampler


@dataclass(frozen=True)
class GridSpec:
    sparse_width: int = field(default=1024, metadata=opt(gt=0, le=MAX_COUNT))
    ratios: tuple[float, ...] = field(
        default=(0.1, 0.3, 0.5, 0.7, 0.9), metadata=opt(gt=0.0, le=1.0, nonempty=True)
    )
    depths: tuple[int, ...] = field(default=(1, 2, 4), metadata=opt(gt=0, le=MAX_COUNT, nonempty=True))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=opt(ge=0, le=MAX_SEED, nonempty=True))
    axes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    match: str = field(default="layer", metadata=opt(choices=MATCHES))
    dense_reference: bool = False  # kind grid: each sparse trial's dense net of the same capacity too


@dataclass(frozen=True)
class ResourcesSpec:
    cpu: float = field(default=1.0, metadata=opt(gt=0.0))
    gpu: float = field(default=0.0, metadata=opt(ge=0.0))
    wait_s: float = field(default=600.0, metadata=opt(gt=0.0))  # for a node that has them, on a cluster


@dataclass(frozen=True)
class RaySpec:
    address: str | None = None
    max_concurrent_trials: int | None = field(default=None, metadata=opt(gt=0, le=MAX_COUNT))
    storage: str | None = None
    max_failures: int = field(default=2, metadata=opt(ge=0, le=MAX_COUNT))


@dataclass(frozen=True)
class MlflowTrackSpec:
    uri: str | None = None  # None: sqlite mlflow.db beside the results folder, as `sweep export` writes


@dataclass(frozen=True)
class TensorboardTrackSpec:
    logdir: str | None = None  # None: <results>/tensorboard, as `sweep export` writes


@dataclass(frozen=True)
class WandbTrackSpec:
    folder: str | None = None  # None: the results folder (runs under its wandb/), as `sweep export` writes
    online: bool = False  # True: to W&B's server (WANDB_API_KEY from the environment), not offline files


@dataclass(frozen=True)
class TrackSpec:
    """Trackers that get the sweep's runs live, as epochs arrive (`sweep export` fills them afterwards)."""

    mlflow: MlflowTrackSpec | None = None
    tensorboard: TensorboardTrackSpec | None = None
    wandb: WandbTrackSpec | None = None


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs: the pure-PyTorch trainer's only input."""

    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    egf: EgfSpec = EgfSpec()
    sparsity: SparsitySpec = SparsitySpec()

    @property
    def key(self) -> str:
        """A stable name: a hash of the settings that differ from their defaults (seed included).

        Settings that do not change the numbers (where the data lives) are left out, and a new
        setting with a default renames nothing.
        """
        flat = {**flatten(config_to_dict(self)), **self.sparsity.effective()}
        defaults = {**flatten(config_to_dict(TrialConfig())), **KEY_BASELINE}
        changed = {k: v for k, v in flat.items() if k not in KEYLESS and v != defaults.get(k)}
        if self.model.factory:  # the factory's code: an edited factory is another model
            changed["model.factory_source"] = factory_source(self.model.factory)
        if self.dataset.factory:  # likewise another data set
            changed["dataset.factory_source"] = factory_source(self.dataset.factory)
        text = json.dumps(changed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# What rows recorded before a setting had a per-method default meant: a trial key names a method's effective
# setting whenever it differs from these, so a changed default never lets an old result stand for the new one.
KEY_BASELINE = {"sparsity.scope": "layer", "sparsity.regrown": "reset"}
GRID_OWNED = frozenset({"model.widths", "model.densities", "model.mask", "model.init_widths", "train.seed"})
SC_SDC_ONLY = ("sparse_width", "ratios", "depths")  # grid keys of kind sc_sdc; kind grid takes axes
KEYLESS = frozenset({"dataset.data_dir", "dataset.download", "train.checkpoint_every"})
TRIAL_SECTIONS = ("dataset", "model", "train", "egf", "sparsity")


@dataclass(frozen=True)
class SweepSpec:
    name: str = field(metadata=opt(nonempty=True))
    kind: str = field(default="single", metadata=opt(choices=KINDS))
    dataset: DatasetSpec = DatasetSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    egf: EgfSpec = EgfSpec()
    sparsity: SparsitySpec = SparsitySpec()
    search: SearchSpec | None = None
    grid: GridSpec | None = None
    resources: ResourcesSpec = ResourcesSpec()
    ray: RaySpec = RaySpec()
    track: TrackSpec = TrackSpec()

    @property
    def trial(self) -> TrialConfig:
        """The spec's own trial: the template that SNAS and SC-SDC vary."""
        return TrialConfig(self.dataset, self.model, self.train, self.egf, self.sparsity)
