"""sparse-sweep: research sweeps on sparse neural networks (SNAS, SC-SDC, Effective Gradient Flow).

The public API, imported lazily so that `sweep query` does not pay for torch or Ray:

    from sweep import load_spec, train_trial, ResultsStore, query
    spec = load_spec("search_spaces/mlp_fashion.yaml", ["train.epochs=1"])
    outcome = train_trial(spec.trial)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SweepSpec": "sweep.spec",
    "TrialConfig": "sweep.spec",
    "load_spec": "sweep.spec",
    "parse_spec": "sweep.spec",
    "with_settings": "sweep.spec",
    "UserError": "sweep.errors",
    "SpecError": "sweep.errors",
    "DataError": "sweep.errors",
    "ResultsError": "sweep.errors",
    "load_arrays": "sweep.core.data",
    "make_splits": "sweep.core.data",
    "build_model": "sweep.core.models",
    "measure_flow": "sweep.core.gradflow",
    "flow_from_gradients": "sweep.core.gradflow",
    "train_trial": "sweep.core.train",
    "TrialOutcome": "sweep.core.train",
    "record_trial": "sweep.engine.local",
    "ResultsStore": "sweep.store",
    "query": "sweep.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
