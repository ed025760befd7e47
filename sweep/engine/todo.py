"""A stage's to-do list. What a stage of planned trials still trains: each planned trial once, none that
finished, each tagged with the growth that trains it; a trial that a longer run continues names the shorter
trial it starts from.

A search's baselines, trained at its best trial's active-weight count, and superseded when a grown
search finds another best trial: the earlier baselines' rows stay, marked `superseded`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sweep.core.data import ArrayDataset
from sweep.echo import Echo
from sweep.engine.growth import Generation
from sweep.engine.sweep_run import SweepRun
from sweep.engine.worker import dataset_key
from sweep.plans.baselines import baseline_trials
from sweep.plans.continuation import continued_keys
from sweep.plans.types import PlannedTrial
from sweep.spec import SweepSpec
from sweep.store import ResultsStore
from sweep.store.summary import best_row, is_feasible


def trials_to_run(
    run: SweepRun, planned: list[PlannedTrial], growth: Generation, experiments: tuple[str, ...]
) -> list[PlannedTrial]:
    """The planned trials not done in the tables, each tagged with the growth that trains it (`growth`
    also holds the lengths the sweep ran at before it grew to more epochs); `experiments` are the Tune
    experiments whose folders hold the sweep's checkpoints."""
    store, sweep, echo = run.store, run.spec.name, run.echo
    generation, earlier_epochs = growth.number, list(growth.earlier_epochs)
    rows = store.read("trials", sweep, columns=["trial_key", "status", "generation"]).to_pylist()
    done = {r["trial_key"] for r in rows if r["status"] == "done"}
    first_trained = {r["trial_key"]: r["generation"] or 0 for r in rows}
    continued = continued_keys(planned, earlier_epochs, done)
    for longer, shorter in continued.items():
        if longer in done:  # its driver stopped between the longer trial's row and forgetting the shorter
            store.forget_trial(sweep, shorter)
    todo, seen = [], set(done)
    for item in planned:
        key = item.config.key
        if key in seen:
            continue
        seen.add(key)
        meta = dataclasses.replace(item.meta, generation=generation)
        if key in continued:
            shorter = continued[key]
            meta = dataclasses.replace(
                meta, generation=first_trained[shorter], continues=shorter, continues_in=experiments
            )
        todo.append(PlannedTrial(item.config, meta))
    skipped = sum(1 for item in planned if item.config.key in done)
    if skipped:
        echo(f"{skipped} of {len(planned)} planned trials are done already; running {len(todo)}")
    longer = sum(1 for item in todo if item.meta.continues)
    if longer:
        echo(f"{longer} of them continue a shorter trial from its last checkpoint: only the new epochs train")
    return todo


BASELINE_ROLES = (
    "baseline_uniform",
    "baseline_erk",
    "baseline_dense",
    "baseline_full_dense",
    "best_reseeded",
)


def planned_baselines(
    spec: SweepSpec, store: ResultsStore, data: Mapping[str, ArrayDataset], echo: Echo
) -> list[PlannedTrial]:
    """The baselines of the best finished search trial; earlier baselines of another best are superseded."""
    arrays = data[dataset_key(spec.dataset)]
    rows = store.rows("trials", spec.name)
    searched = [r for r in rows if r["role"] in ("search", "warm_start")]
    usable = [r for r in searched if r["status"] == "done" and r.get(spec.search.metric) is not None]
    usable = [r for r in usable if is_feasible(r)]
    if not usable:
        echo("no finished search trial: no baselines to train")
        return []
    best = best_row(usable, spec.search.metric)
    echo(f"training the baselines at the best trial's {best['active_weights']:,} active weights")
    planned = baseline_trials(best, arrays.input_shape, arrays.num_classes, spec.search.baseline_seeds)
    superseded = _supersede(store, spec.name, rows, best["trial_key"], {p.config.key for p in planned})
    if superseded:
        echo(superseded)
    return planned


def _supersede(store: ResultsStore, sweep: str, rows: list[dict], best: str, needed: set[str]) -> str | None:
    """Baselines sized on another trial are superseded, unless the new best needs the same net again; the
    line that says so (None: none was)."""
    earlier = [r for r in rows if r["role"] in BASELINE_ROLES and r["pair_id"] != best]
    superseded = 0
    for row in earlier:
        again = row["trial_key"] in needed
        if not again and row.get("superseded"):
            continue
        store.write("trials", sweep, row["trial_key"], [{**row, **_fresh(again, best, row)}])
        superseded += not again
    if superseded:
        olds = sorted({r["pair_id"] for r in earlier if r["trial_key"] not in needed})
        changed = f"the best trial changed ({', '.join(olds)} -> {best})"
        return f"{changed}: {superseded} earlier baselines superseded"
    return None


def _fresh(again: bool, best: str, row: dict) -> dict:
    if again:  # the new best needs this net too: it is one of its baselines now
        return {"pair_id": best, "superseded": False}
    return {"pair_id": row["pair_id"], "superseded": True}
