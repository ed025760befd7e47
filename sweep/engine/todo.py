"""What a stage of planned trials still trains: each planned trial once, none that finished, each tagged with
the growth that trains it; a trial that a longer run continues names the shorter trial it starts from."""

from __future__ import annotations

import dataclasses

from sweep.engine.growth import Generation
from sweep.engine.sweep_run import SweepRun
from sweep.plans.continuation import continued_keys
from sweep.plans.types import PlannedTrial


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
