"""The SNAS search on Tune: Ray's `OptunaSearch` around the plans' define-by-run space and sampler."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from sweep.engine.growth import Generation
from sweep.engine.search.replay import ReplayingSearcher
from sweep.engine.search.study import StudyStart, open_study
from sweep.engine.search.study_searcher import StudySearcher
from sweep.engine.sweep_run import SweepRun
from sweep.engine.worker import dataset_key
from sweep.plans.snas import SearchTemplate, define_space, make_template
from sweep.spec import SweepSpec


def search_config(run: SweepRun, settings: dict, generation: Generation) -> tune.TuneConfig | None:
    """The search's Tune settings: Optuna through `OptunaSearch` on the sweep's study, wrapped so that
    repeats are replayed; None when the study holds every proposal the spec asks for."""
    spec, store, echo = run.spec, run.store, run.echo
    search = spec.search
    arrays = run.data[dataset_key(spec.dataset)]
    template = make_template(spec, arrays.input_shape, arrays.num_classes, generation.number)
    journal = store.study_journal(spec.name)
    start = open_study(spec, store, template, journal, echo)
    if start.proposals_left == 0:
        echo(f"the study holds all {search.num_samples} proposals already: no search to run")
        return None
    scheduler = None
    if search.scheduler == "asha":
        scheduler = ASHAScheduler(
            metric=search.metric,
            mode="max",
            max_t=spec.train.epochs + 1,
            grace_period=min(2, spec.train.epochs + 1),
            reduction_factor=3,
        )
    warm = len(template.warm_starts) if start.queue_warm_starts else 0
    more = f"{start.proposals_left} more of {search.num_samples}" if start.made else f"{search.num_samples}"
    echo(
        f"searching {more} trials: {search.sampler} on {search.metric}, {warm} warm starts, "
        f"levels {list(template.levels)}"
    )
    echo(f"the Optuna study: {journal}; {dashboard_hint(journal)}")
    settings_then = generation.sampler_settings
    searcher = make_searcher(spec, template, journal, settings_then, start)
    return tune.TuneConfig(
        search_alg=ReplayingSearcher(
            searcher, store.root, spec.name, start.proposals_left, search.warm_start_from
        ),
        scheduler=scheduler,
        num_samples=start.proposals_left,
        **settings,
    )


def make_searcher(
    spec: SweepSpec,
    template: SearchTemplate,
    journal: str,
    settings: Mapping[str, int] | None = None,
    start: StudyStart | None = None,
) -> StudySearcher:
    """Ray's `OptunaSearch` with the plans' space and sampler, its study in the Optuna journal file `journal`
    (so that `optuna-dashboard` and Optuna itself can read the search as it runs). `start` is where the
    study stands (None: a new study, its warm starts first, the sampler seeded from the spec)."""
    warm_starts = start.queue_warm_starts if start else True
    seed = start.seed if start else None
    points = [dict(point) for point in template.warm_starts] if warm_starts else []
    return StudySearcher(
        spec.search,
        settings,
        seed,
        journal,
        space=partial(define_space, template=template),
        points_to_evaluate=points or None,
        study_name=spec.name,
    )


def dashboard_hint(journal: str) -> str:
    """How to watch the study: the dashboard's command, and first how to install it where it is missing."""
    beside = Path(sys.executable).parent / "optuna-dashboard"  # where pip puts it for this interpreter
    missing = importlib.util.find_spec("optuna_dashboard") is None
    command = shlex.quote(str(beside)) if missing or beside.exists() else "optuna-dashboard"
    watch = f"{command} {shlex.quote(journal)}"
    if missing:
        install = f"{shlex.quote(sys.executable)} -m pip install optuna-dashboard"
        return f"watch it with: {install} && {watch}"
    return f"watch it with: {watch}"
