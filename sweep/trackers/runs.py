"""A sweep's trials as tracker runs, read from the tables (the source of truth): one run per trial, named by
(sweep, trial key), with its settings flattened as parameters, its epochs as metrics at step = epoch, each
layer's gradient terms under the layer's module name (or its index where the tables hold no names), its final
metrics and its tags. A trial is in the tables once (replayed, superseded and continued trials are rows of
the trial that holds them), so each has exactly one run. Plain data: the tracker modules write it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from sweep.errors import UserError
from sweep.spec.convert import flatten
from sweep.store import ResultsStore
from sweep.store.summary import pareto_keys, sweep_metric

EPOCH_METRICS = (
    "train_loss", "train_acc", "val_acc", "test_loss", "test_acc",
    "egf", "egf1", "egf2", "egf1_pw", "egf2_pw", "gf1", "gf2", "lr",
)  # fmt: skip
LAYER_METRICS = ("g_masked_l1", "g_masked_l2", "g_l1", "g_l2", "density")
FINAL_METRICS = (
    "test_acc", "test_loss", "val_acc", "best_val_acc", "egf", "egf1", "egf2", "gf1", "gf2",
    "egf1_mean", "egf2_mean", "gf1_mean", "gf2_mean", "active_weights", "total_weights", "density", "wall_s",
)  # fmt: skip
TAGS = ("kind", "role", "status", "method", "family", "pair_id", "generation")


@dataclass
class TrialRun:
    """What a tracker holds of one trial."""

    sweep: str
    trial_key: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    steps: dict[int, dict[str, float]] = field(default_factory=dict)  # epoch -> metric -> value
    final: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.sweep}/{self.trial_key}"

    @property
    def last_step(self) -> int:
        return max(self.steps, default=-1)


def sweep_runs(store: ResultsStore, sweep: str) -> list[TrialRun]:
    """Every trial of the sweep as a run, in the order the tables hold them."""
    trials = store.rows("trials", sweep)
    if not trials:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"no sweep named {sweep!r} in {store.root} (sweeps there: {known})")
    state = store.sweep_state(sweep)
    metric = sweep_metric(state.spec, state.spec["kind"]) if state else "test_acc"
    front = pareto_keys(trials, metric)
    epochs, layers = _by_trial(store.rows("epochs", sweep)), _by_trial(store.rows("layers", sweep))
    return [
        trial_run(sweep, trial, epochs.get(trial["trial_key"], []), layers.get(trial["trial_key"], []), front)
        for trial in trials
    ]


def _by_trial(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row["trial_key"]].append(row)
    return grouped


def trial_run(
    sweep: str, trial: dict, epochs: Sequence[dict], layers: Sequence[dict], front: Set[str] | None = None
) -> TrialRun:
    """One trial's run from its rows: its `trials` row, its `epochs` and `layers` rows, and the keys of the
    sweep's Pareto front (None while the sweep runs: no `pareto` tag, since the front is not known yet)."""
    key = trial["trial_key"]
    run = TrialRun(sweep, key, params=dict(_params(trial)), final=_numbers(trial, FINAL_METRICS))
    run.tags = {"sweep": sweep, "trial_key": key}
    if front is not None:
        run.tags["pareto"] = str(key in front).lower()
    run.tags |= {name: str(trial[name]) for name in TAGS if trial.get(name) is not None}
    for row in epochs:
        run.steps.setdefault(int(row["epoch"]), {}).update(_numbers(row, EPOCH_METRICS))
    for row in layers:
        name = row.get("module") or str(row["layer"])
        terms = {f"layer/{name}/{metric}": value for metric, value in _numbers(row, LAYER_METRICS).items()}
        run.steps.setdefault(int(row["epoch"]), {}).update(terms)
    return run


def _params(trial: dict) -> Iterator[tuple[str, str]]:
    """The trial's settings, flattened (`model.densities` per layer as `model.densities.0`, ...), and its
    place in the sweep."""
    config = json.loads(trial["config"]) if trial.get("config") else {}
    for name, value in flatten(config).items():
        if isinstance(value, list | tuple):
            yield from ((f"{name}.{i}", _text(v)) for i, v in enumerate(value))
        else:
            yield name, _text(value)
    for name in ("role", "pair_id", "seed"):
        if trial.get(name) is not None:
            yield name, _text(trial[name])


def _numbers(row: dict, names: tuple[str, ...]) -> dict[str, float]:
    """The finite numbers of `names` in the row (a tracker takes no null and no NaN)."""
    found = {}
    for name in names:
        value = row.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    return found


def _text(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, dict | list) else str(value)
