"""The search's searcher through Tune's own save and restore, for every sampler: it pickles whatever the
sampler holds, and the restored searcher goes on with the same study and draws new proposals."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import cloudpickle
from ray.tune.search import Searcher

from sweep.engine.search.searcher import make_searcher
from sweep.plans.snas import make_template
from sweep.spec import parse_spec

SAMPLERS = ("tpe", "nsga2", "random")


def search_spec(sampler: str, seed: int = 7):
    return parse_spec(
        {
            "name": "state",
            "kind": "snas",
            "model": {"widths": [64, 32]},
            "search": {
                "sampler": sampler,
                "seed": seed,
                "num_samples": 12,
                "density_levels": [0.05, 0.1, 0.2, 0.5, 1.0],
            },
        }
    )


def new_searcher(spec, journal) -> Searcher:
    searcher = make_searcher(spec, make_template(spec, (1, 28, 28), 10), str(journal))
    searcher.set_search_properties(None, None, {})
    return searcher


def study_params(journal) -> list[dict]:
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return [t.params for t in optuna.load_study(study_name="state", storage=storage).trials]


def finish(searcher: Searcher, trial_id: str, accuracy: float) -> None:
    searcher.on_trial_complete(trial_id, {"val_acc": accuracy, "active_weights": 1000})


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_searcher_pickles_and_restores_through_tune(sampler, tmp_path):
    journal = tmp_path / "state.optuna.log"
    searcher = new_searcher(search_spec(sampler), journal)
    for i in range(4):
        assert searcher.suggest(f"t{i}")
    finish(searcher, "t0", 0.5)
    finish(searcher, "t1", 0.6)
    pickled = cloudpickle.dumps(searcher)  # as Tune pickles the tuner with its searcher when a run starts
    searcher.save_to_dir(str(tmp_path))  # as Tune saves it with every experiment checkpoint
    first = study_params(journal)

    restored = cloudpickle.loads(pickled)
    restored.restore_from_dir(str(tmp_path))
    finish(restored, "t2", 0.7)  # the trials open at the save finish on the restored searcher
    finish(restored, "t3", 0.4)
    for i in range(4, 8):
        assert restored.suggest(f"t{i}")
        finish(restored, f"t{i}", 0.5 + i / 100)

    storage = JournalStorage(JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="state", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 8  # one study, nothing lost
    assert trials[2].values[0] == 0.7
    after = [t.params for t in trials[4:]]
    assert after != first  # re-seeded: the restored searcher does not draw its first proposals again


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_same_seed_proposes_the_same_first_trials(sampler, tmp_path):
    """The rebuilt sampler is still the seeded one: two new searches with one seed propose alike."""
    for run in ("a", "b"):
        searcher = new_searcher(search_spec(sampler), tmp_path / f"{run}.log")
        for i in range(3):
            searcher.suggest(f"t{i}")
    assert study_params(tmp_path / "a.log") == study_params(tmp_path / "b.log")


def test_a_searcher_saved_under_its_module_s_old_path_restores(tmp_path):
    """Tune's state of a search interrupted before the searcher's module moved (`sweep.engine.search`) names
    the old path: unpickling it gets the class at the new one, and the search goes on."""
    import pickle

    import sweep.engine.search.study_searcher as moved

    journal = tmp_path / "state.optuna.log"
    searcher = new_searcher(search_spec("tpe"), journal)
    assert searcher.suggest("t0")
    finish(searcher, "t0", 0.5)
    pickled = pickle.dumps(searcher, protocol=0)  # names its classes on lines of their own
    before = pickled.replace(b"sweep.engine.search.study_searcher", b"sweep.engine.study_searcher")
    assert b"sweep.engine.search.study_searcher" not in before  # as the code before the move wrote it
    restored = pickle.loads(before)
    assert type(restored) is moved.StudySearcher
    assert restored.suggest("t1")
    finish(restored, "t1", 0.6)
    assert len(study_params(journal)) == 2
