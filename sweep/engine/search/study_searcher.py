"""Ray's `OptunaSearch` on the sweep's journal, in a form Tune can pickle whatever the sampler.

Tune pickles its searcher twice: with the tuner when the run starts, and in every experiment checkpoint.
Ray's `OptunaSearch` pickles its whole `__dict__`, sampler and study included, and a sampler may hold what
does not pickle (Optuna 5.1's NSGA-II sampler holds a lock). `StudySearcher` keeps the sampler, the study, the
storage and Optuna's live trials out of its pickled state: they are the journal's to hold. On restore it opens
the study again from the journal and builds the sampler again from the search's settings, seeded with the
continuation seed (`plans/snas.continuation_seed`) of the trials the study holds by then, so that a restored
search does not draw its first proposals again.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray.tune.search.optuna import OptunaSearch

from sweep.plans.snas import continuation_seed, make_sampler
from sweep.spec import SearchSpec

LIVE = ("_sampler", "_ot_study", "_storage")  # rebuilt from the journal and the settings on restore


class StudySearcher(OptunaSearch):
    """`OptunaSearch` with a sampler made from `search` and `settings`, its study in the journal file."""

    def __init__(
        self,
        search: SearchSpec,
        settings: Mapping[str, int] | None,
        seed: int | None,
        journal: str,
        **options: Any,
    ) -> None:
        self._search = search
        self._settings = None if settings is None else dict(settings)
        self._journal = journal
        sampler, goal = make_sampler(search, self._settings, seed)
        super().__init__(
            metric=goal.metric, mode=goal.mode, sampler=sampler, storage=_storage(journal), **options
        )

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in LIVE}
        state["_ot_trials"] = {tune_id: trial._trial_id for tune_id, trial in self._ot_trials.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reopen(state["_ot_trials"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__setstate__(pickle.load(file))

    def _reopen(self, trial_ids: Mapping[str, int]) -> None:
        """The study from the journal, a sampler seeded for what it holds, and the open trials' handles."""
        self._storage = _storage(self._journal)
        try:
            summary = self._storage.get_study_id_from_name(self._study_name)
            held = len(self._storage.get_all_trials(summary, deepcopy=False))
        except KeyError:  # restored before the study's first write reached the journal
            held = 0
        seed = continuation_seed(self._search.seed, held)
        self._sampler, goal = make_sampler(self._search, self._settings, seed)
        directions = ["maximize" if mode == "max" else "minimize" for mode in _modes(goal.mode)]
        self._ot_study = optuna.create_study(
            storage=self._storage,
            sampler=self._sampler,
            pruner=optuna.pruners.NopPruner(),
            study_name=self._study_name,
            load_if_exists=True,
            directions=directions,
        )
        study = self._ot_study
        self._ot_trials = {tune_id: optuna.Trial(study, trial) for tune_id, trial in trial_ids.items()}


def _storage(journal: str) -> JournalStorage:
    return JournalStorage(JournalFileBackend(journal))


def _modes(mode: str | list[str]) -> list[str]:
    return mode if isinstance(mode, list) else [mode]
