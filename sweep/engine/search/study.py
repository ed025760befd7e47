"""A search's Optuna study before Tune runs it: how many proposals are left, and what the sampler knows.

The study lives in the sweep's Optuna journal (`ResultsStore.study_journal`), so a search that grows, or
starts again after its Tune state was lost, continues the same study: its sampler conditions on every trial
before. Trials an interrupted run left open are closed as failed (marked `abandoned`; they do not count),
the proposals already made count toward `search.num_samples`, and a sampler with a seed gets a seed of its
own for the rest (`continuation_seed`). A new search with `search.warm_start_from` first takes the finished
trials of those sweeps that fit its space (`plans/history.py`); they inform the sampler and count for
nothing else. A study whose journal is gone is rebuilt from the sweep's own rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweep.echo import Echo
from sweep.plans.history import fit_rows
from sweep.plans.snas import SearchTemplate, continuation_seed, objective
from sweep.spec import SweepSpec
from sweep.store import ResultsStore

OPEN = (TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
FROM = "warm_start_from"  # the user attr naming the sweep a borrowed trial came from


@dataclass(frozen=True)
class StudyStart:
    proposals_left: int
    made: int  # proposals the study holds already
    seed: int  # the sampler's seed from here on
    queue_warm_starts: bool  # a study without proposals of its own evaluates the warm starts first


def open_study(
    spec: SweepSpec, store: ResultsStore, template: SearchTemplate, journal: str, echo: Echo
) -> StudyStart:
    """Prepare the sweep's study in `journal` for the run that starts now."""
    storage = JournalStorage(JournalFileBackend(journal))
    goal = objective(spec.search)
    modes = goal.mode if isinstance(goal.mode, list) else [goal.mode]
    directions = ["maximize" if mode == "max" else "minimize" for mode in modes]
    study = optuna.create_study(
        storage=storage, study_name=spec.name, directions=directions, load_if_exists=True
    )
    with warnings.catch_warnings():  # experimental since Optuna 3.2, and what optuna-dashboard shows
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(goal.metric if isinstance(goal.metric, list) else [goal.metric])
    abandoned = 0
    for trial in study.get_trials(deepcopy=False, states=OPEN):
        storage.set_trial_user_attr(trial._trial_id, "abandoned", True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        abandoned += 1
    if abandoned:
        echo(f"the Optuna study of {spec.name}: {abandoned} trials an interrupted run left open, closed")
    trials = study.get_trials(deepcopy=False)
    made = sum(1 for t in trials if _own(t) and not t.user_attrs.get("abandoned"))
    if made == 0:
        made = _rebuild(spec, store, template, study, echo)
    if spec.search.warm_start_from and not any(FROM in t.user_attrs for t in trials):
        _borrow(spec, store, template, study, echo)
    left = max(0, spec.search.num_samples - made)
    return StudyStart(left, made, continuation_seed(spec.search.seed, made), made == 0)


def proposals_made(spec: SweepSpec, store: ResultsStore) -> int:
    """The proposals the sweep's study holds, finished (borrowed and abandoned trials aside)."""
    storage = JournalStorage(JournalFileBackend(store.study_journal(spec.name)))
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        return 0
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    return sum(1 for t in finished if _own(t) and not t.user_attrs.get("abandoned"))


def _own(trial: optuna.trial.FrozenTrial) -> bool:
    return "trial_key" in trial.user_attrs and FROM not in trial.user_attrs


def _rebuild(
    spec: SweepSpec, store: ResultsStore, template: SearchTemplate, study: optuna.Study, echo: Echo
) -> int:
    """A study with no trials of a sweep that has search rows lost its journal: rebuild it from the rows."""
    rows = store.rows("trials", spec.name) if store.exists() else []
    fitted = fit_rows(template, objective(spec.search), rows, {"rebuilt": True})
    if fitted.trials:
        study.add_trials(fitted.trials)
        echo(f"the Optuna study of {spec.name} was rebuilt from its {len(fitted.trials)} finished trials")
    return len(fitted.trials)


def _borrow(
    spec: SweepSpec, store: ResultsStore, template: SearchTemplate, study: optuna.Study, echo: Echo
) -> None:
    """Seed the sampler with the fitting finished trials of the sweeps in `search.warm_start_from`."""
    goal = objective(spec.search)
    for name in spec.search.warm_start_from:
        state = store.sweep_state(name)
        theirs = (state.spec.get("search") if state else None) or {}
        if theirs and theirs.get("metric", spec.search.metric) != spec.search.metric:
            echo(
                f"warm start from {name}: none taken: it ranked by {theirs['metric']}, this search by "
                f"{spec.search.metric}"
            )
            continue
        fitted = fit_rows(template, goal, store.rows("trials", name), {FROM: name})
        study.add_trials(fitted.trials)
        misfits = sum(fitted.misfits.values())
        misfit = f"; {misfits} did not fit: {fitted.misfit_text()}" if misfits else ""
        took = f"took {len(fitted.trials)} finished trials (not trained again)"
        echo(f"warm start from {name}: {took}{misfit}")
