"""`sweep run --dry-run`: what a spec would run, without starting anything (no Ray, nothing written).

It counts the trials the spec plans (grid cells × seeds, a search's samples and baselines), how many are
done already in the tables, the trials each concurrent slot takes, and estimates the wall time from the
tables' own `epochs.seconds` of similar trials: the same data set, subset, architecture, batch size and
mask method; failing that, the same data set and family, scaled by the number of weights. Against a sweep
that ran, it says how the spec grows it (or refuses, as `sweep run` would), and a trial that a longer run
continues counts only its new epochs.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass

from sweep.core.data import dataset_shape, dataset_sizes
from sweep.core.describe import layer_table, table_lines
from sweep.core.masks.methods import planned_epochs
from sweep.core.models import weight_shapes
from sweep.echo import duration
from sweep.engine.growth import check_growth, stage_generation
from sweep.plans.continuation import shorter_trials
from sweep.plans.plan import check_models, planned_trials
from sweep.spec import SweepSpec, TrialConfig
from sweep.store import ResultsStore, query
from sweep.store.summary import done_keys


@dataclass(frozen=True)
class Forecast:
    planned: int
    detail: str
    done: int
    slots: int | None
    slots_basis: str
    trial_seconds: float | None
    basis: str
    growth: str | None = None
    continued: int = 0

    @property
    def todo(self) -> int:
        return max(0, self.planned - self.done)


def forecast(spec: SweepSpec, results: str, address: str | None) -> Forecast:
    items = planned_trials(spec) if spec.kind != "snas" else []
    check_models(spec, items)
    store = ResultsStore(results)
    finished = done_keys(store, spec.name)
    state = store.sweep_state(spec.name) if store.exists() else None
    grown = check_growth(state, spec, results) if state else None
    continued: dict[str, tuple[str, int]] = {}
    if spec.kind == "snas":
        configs = [spec.trial] * spec.search.num_samples
        planned, detail = _search_counts(spec)
        done = min(planned, len(finished))
        todo = [(config, planned_epochs(config)) for config in configs[: max(0, planned - done)]]
    else:
        trials = {p.config.key: p.config for p in items}
        planned, detail = len(trials), _grid_detail(spec, len(trials))
        done = len(finished & set(trials))
        earlier = list(stage_generation(state).earlier_epochs) if state else []
        if grown and grown.epochs:
            earlier.append(grown.epochs[0])
        continued = shorter_trials(items, earlier, finished)
        todo = [
            (config, _epochs_left(config, continued)) for key, config in trials.items() if key not in finished
        ]
    slots, slots_basis = _slots(spec, address)
    seconds, basis = _trial_seconds(store, todo)
    described = (grown.describe() if grown.grows else "nothing new") if grown else None
    return Forecast(
        planned,
        detail,
        done,
        slots,
        slots_basis,
        seconds,
        basis,
        described,
        len(continued.keys() - finished),
    )


def _epochs_left(config: TrialConfig, continued: dict[str, tuple[str, int]]) -> int:
    """The epochs a trial still trains: all of them, or those after the shorter trial it continues."""
    if config.key not in continued:
        return planned_epochs(config)
    return max(0, config.train.epochs - continued[config.key][1])


def forecast_lines(spec: SweepSpec, results: str, f: Forecast) -> list[str]:
    lines = [
        f"dry run of sweep {spec.name} ({spec.kind}) in {results}: nothing started, nothing written",
        f"  trials: {f.planned} planned ({f.detail}); {f.done} done already; {f.todo} to run",
        *_model_lines(spec),
    ]
    if f.growth is not None:
        lines.append(f"  grows the sweep that ran: {f.growth}")
    if f.continued:
        lines.append(f"  {f.continued} of them continue a shorter trial: only their new epochs would train")
    lines.append(f"  slots: {f.slots_basis}")
    if f.todo == 0:
        lines.append("  estimate: nothing left to run")
    elif f.trial_seconds is None:
        lines.append(f"  estimate: none: {f.basis}")
    else:
        wall = f" and about {duration(f.trial_seconds / f.slots)} of wall time" if f.slots else ""
        per_slot = f", {math.ceil(f.todo / f.slots)} trials per slot" if f.slots else ""
        lines.append(
            f"  estimate: about {duration(f.trial_seconds)} of trial time{wall}{per_slot}, {f.basis}"
        )
    return lines


def _search_counts(spec: SweepSpec) -> tuple[int, str]:
    search = spec.search
    detail = f"{search.num_samples} search samples"
    if not search.baselines:
        return search.num_samples, detail
    seeds = search.baseline_seeds or (spec.train.seed,)
    baselines = 4 * len(seeds) + sum(1 for seed in seeds if seed != spec.train.seed)
    return search.num_samples + baselines, f"{detail} and {baselines} baselines"


def _grid_detail(spec: SweepSpec, distinct: int) -> str:
    grid = spec.grid
    if grid is None:
        return "one trial"
    cells = math.prod(len(values) for values in grid.axes.values()) if grid.axes else 1
    parts = [_count(len(grid.seeds), "seed")] + ([_count(cells, "axis cell")] if grid.axes else [])
    if spec.kind == "sc_sdc":
        depths = [_count(len(grid.depths), "depth")] if spec.model.built_in else []  # others: the model's
        parts = [_count(len(grid.ratios), "ratio"), *depths, *parts, "2 roles"]
    elif grid.dense_reference:
        parts.append("with dense references")
    return " x ".join(parts) + f": {distinct} distinct"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _slots(spec: SweepSpec, address: str | None) -> tuple[int | None, str]:
    if address or spec.ray.address:
        return None, "on the cluster, as many trials at once as its nodes fit (not known without joining it)"
    cpus = os.cpu_count() or 1
    slots = max(1, int(cpus // spec.resources.cpu))
    if spec.ray.max_concurrent_trials:
        slots = min(slots, spec.ray.max_concurrent_trials)
    gpu = "; GPU trials need a GPU here" if spec.resources.gpu else ""
    return slots, f"{slots} at a time on this machine ({cpus} CPUs, {spec.resources.cpu:g} per trial{gpu})"


def _trial_seconds(store: ResultsStore, todo: list[tuple[TrialConfig, int]]) -> tuple[float | None, str]:
    """Seconds of training for `todo` (each trial with the epochs it trains), from similar trials' epochs
    in the tables."""
    if not todo:
        return 0.0, "nothing to run"
    if not store.exists():
        return None, "the results folder holds no trials yet; run a few first"
    rates = query(
        store,
        """WITH per_trial AS (
               SELECT t.sweep, t.trial_key, t.dataset, coalesce(t.subset, -1) AS subset, t.family, t.widths,
                      t.batch_size, coalesce(t.method, 'random') AS method, t.total_weights, t.wall_s,
                      avg(e.seconds) FILTER (WHERE e.epoch > 0) AS epoch_s, sum(e.seconds) AS trained_s
               FROM trials t JOIN epochs e USING (sweep, trial_key)
               WHERE t.status = 'done' GROUP BY ALL)
           SELECT dataset, subset, family, widths, batch_size, method, avg(total_weights) AS weights,
                  avg(epoch_s) AS epoch_s, avg(greatest(wall_s - trained_s, 0)) AS fixed_s, count(*) AS trials
           FROM per_trial WHERE epoch_s IS NOT NULL GROUP BY ALL""",
    ).to_dict("records")
    exact = {
        _signature(r["dataset"], r["subset"], r["family"], r["widths"], r["batch_size"], r["method"]): r
        for r in rates
    }
    family = defaultdict(list)
    for r in rates:
        family[r["dataset"], r["subset"], r["family"]].append(r)
    total, similar, scaled = 0.0, 0, 0
    for config, epochs in todo:
        model, data = config.model, config.dataset
        subset = data.subset or -1
        signature = _signature(
            data.name, subset, model.family, model.widths, config.train.batch_size, config.sparsity.method
        )
        match = exact.get(signature)
        if match is not None:
            total += match["fixed_s"] + epochs * match["epoch_s"]
            similar += match["trials"]
            continue
        near = family.get((data.name, subset, model.family))
        if not near:
            return None, f"the tables hold no trial like these yet ({data.name}, {model.family})"
        weights = sum(math.prod(s) for s in _shapes(config))
        per_weight = sum(r["epoch_s"] / r["weights"] for r in near) / len(near)
        fixed = sum(r["fixed_s"] for r in near) / len(near)
        total += fixed + epochs * per_weight * weights
        scaled += 1
    basis = (
        "from similar trials in the tables (same data, architecture, batch size, method)" if similar else ""
    )
    if scaled:
        scaled_basis = f"{scaled} scaled by their weights from trials of the same family"
        basis = f"{basis}; {scaled_basis}" if basis else scaled_basis
    return total, basis


def _model_lines(spec: SweepSpec) -> list[str]:
    """The data's shape and the spec's model, layer by layer (a grid's or a search's cells vary it)."""
    input_shape, classes = dataset_shape(spec.dataset)
    model = spec.model
    if model.built_in:
        named = "widths " + "-".join(map(str, model.widths))
    else:
        named = " ".join(
            filter(None, [model.name or model.factory, json.dumps(model.kwargs) if model.kwargs else ""])
        )
    train, val, test = dataset_sizes(spec.dataset)
    data = f"  data: {spec.dataset.name}, images {'×'.join(map(str, input_shape))}, {classes} classes; "
    data += f"{train:,} training, {val:,} validation and {test:,} test samples a trial"
    if spec.kind in ("sc_sdc", "snas") and model.built_in:  # the grid or the search sets the widths
        return [data]
    varied = " (the spec's own; its cells vary it)" if spec.kind != "single" else ""
    return [
        data,
        f"  model: {model.family} {named}{varied}",
        *table_lines(layer_table(model, input_shape, classes)),
    ]


def _signature(*parts: object) -> tuple:
    return tuple(tuple(p) if not isinstance(p, str) and hasattr(p, "__len__") else p for p in parts)


def _shapes(config: TrialConfig) -> list[tuple[int, ...]]:
    input_shape, classes = dataset_shape(config.dataset)
    return weight_shapes(config.model, input_shape, classes)
