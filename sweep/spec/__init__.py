"""Specs: YAML in, frozen and validated dataclasses out. Imports no other layer of the project.

Exported here: what other packages use; the rest is imported from its module (`spec.choices`, `spec.diff`,
`spec.schema`)."""

from sweep.spec.choices import (
    ACTIVATIONS,
    MASKS_CHANGE,
    METHODS,
    METRICS,
    OPTIMIZERS,
)
from sweep.spec.convert import config_to_dict
from sweep.spec.load import (
    apply_overrides,
    axis_keys,
    load_spec,
    parse_spec,
    parse_trial,
    read_yaml,
    spec_to_yaml,
    with_settings,
)
from sweep.spec.names import check_sweep_name
from sweep.spec.schema import (
    DatasetSpec,
    GridSpec,
    ModelSpec,
    SearchSpec,
    SparsitySpec,
    SweepSpec,
    TrainSpec,
    TrialConfig,
)

__all__ = [
    "ACTIVATIONS",
    "MASKS_CHANGE",
    "METHODS",
    "METRICS",
    "OPTIMIZERS",
    "DatasetSpec",
    "GridSpec",
    "ModelSpec",
    "SearchSpec",
    "SparsitySpec",
    "SweepSpec",
    "TrainSpec",
    "TrialConfig",
    "apply_overrides",
    "axis_keys",
    "check_sweep_name",
    "config_to_dict",
    "load_spec",
    "parse_spec",
    "parse_trial",
    "read_yaml",
    "spec_to_yaml",
    "with_settings",
]
