"""Sweeps that grow under their name, through the CLI on a real Ray with real Optuna: more search samples,
more seeds, more epochs; changes that are not growth refused by name; searches warm-started from others."""

from __future__ import annotations

import json
import os
import signal

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.store import ResultsStore

from . import drivers
from .conftest import tiny_grid, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]

SEARCH = """
name: {name}
kind: snas
dataset: {{name: synthetic, subset: 300}}
model: {{widths: [32, 16]}}
train: {{epochs: 1, batch_size: 64, lr: {lr}}}
egf: {{samples: 64}}
search: {{num_samples: {samples}, sampler: random, density_levels: [0.1, 0.2, 0.5, 1.0], seed: 5{extra}}}
"""


def search_spec(path, name, samples, lr=0.1, extra=""):
    return write_spec(path / f"{name}.yaml", SEARCH.format(name=name, samples=samples, lr=lr, extra=extra))


def trials(results, sweep):
    return {row["trial_key"]: row for row in ResultsStore(results).rows("trials", sweep)}


def study_of(results, sweep):
    journal = ResultsStore(results).study_journal(sweep)
    return optuna.load_study(study_name=sweep, storage=JournalStorage(JournalFileBackend(str(journal))))


def state_of(results, sweep):
    return json.loads((results / "_sweeps" / f"{sweep}.json").read_text())


@pytest.fixture(scope="module")
def searched(tmp_path_factory, shared_ray):
    """A random search of 8 samples, grown to 12 by the tests."""
    from sweep.cli import main

    folder = tmp_path_factory.mktemp("grow-search")
    results, spec = folder / "r", search_spec(folder, "grow-search", 8)
    assert main(["run", str(spec), "--results", str(results)]) == 0
    before = trials(results, "grow-search"), state_of(results, "grow-search")
    return folder, results, spec, before


def test_a_search_grows_by_more_samples_and_keeps_its_study_and_sampler(searched, cli):
    _, results, spec, (first_rows, first_state) = searched
    first_study = [t.params for t in study_of(results, "grow-search").trials]
    grown = cli("run", spec, "--results", results, "--set", "search.num_samples=12")
    assert grown.code == 0, grown.err
    assert "growing sweep grow-search (growth 1): search.num_samples: 8 -> 12" in grown.out
    assert "searching 4 more of 12 trials" in grown.out

    study = study_of(results, "grow-search")
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(complete) == 12 and all("trial_key" in t.user_attrs for t in complete)
    new_proposals = [t.params for t in sorted(complete, key=lambda t: t.number)[8:]]
    assert new_proposals != first_study[:4]  # the sampler continues; it does not draw its first 4 again

    rows = trials(results, "grow-search")
    assert len(rows) <= 12 and set(first_rows) <= set(rows)
    added = [row for key, row in rows.items() if key not in first_rows]
    assert 1 <= len(added) <= 4 and all(row["generation"] == 1 for row in added)
    replayed = 4 - len(added)  # a proposal that repeats a trained configuration is replayed, and counted
    assert replayed == 0 or f"{replayed} proposal" in grown.out
    for key, row in first_rows.items():  # the first run's trials did not train again
        assert rows[key]["started_at"] == row["started_at"] and rows[key]["generation"] == 0

    state = state_of(results, "grow-search")
    assert state["sampler"] == first_state["sampler"] and state["generation"] == 1
    assert [entry["changes"] for entry in state["history"]] == [[], ["search.num_samples: 8 -> 12"]]
    assert state["history"][1]["trials_added"] == len(added)
    assert state["history"][1]["versions"]["optuna"] == optuna.__version__

    status = cli("status", "grow-search", "--results", results)
    assert status.code == 0 and "runs (0: the first; each growth after it):" in status.out
    assert f"search.num_samples: 8 -> 12: {len(added)} trials added" in status.out

    again = cli("run", spec, "--results", results, "--set", "search.num_samples=12")
    assert again.code == 0 and "already complete" in again.out
    assert len(trials(results, "grow-search")) == len(rows)


def test_a_search_changed_otherwise_is_refused_naming_each_change(searched, cli):
    _, results, spec, _ = searched
    before = (results / "_sweeps" / "grow-search.json").read_bytes()
    refused = cli("run", spec, "--results", results, "--set", "search.sampler=tpe", "--set", "train.epochs=2")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "search.sampler: random -> tpe" in refused.err and "train.epochs: 1 -> 2" in refused.err
    assert "search at the new length under another name" in refused.err
    dry = cli("run", spec, "--results", results, "--set", "search.sampler=tpe", "--dry-run")
    assert dry.code == 2 and "search.sampler" in dry.err
    assert (results / "_sweeps" / "grow-search.json").read_bytes() == before


def test_a_search_warm_starts_from_the_fitting_trials_of_others(searched, cli):
    folder, results, _, _ = searched
    other = cli("run", search_spec(folder, "grow-other-lr", 2, lr=0.2), "--results", results)
    assert other.code == 0, other.err
    theirs = len(trials(results, "grow-search"))
    warm = search_spec(folder, "grow-warm", 3, extra=", warm_start_from: [grow-search, grow-other-lr]")
    result = cli("run", warm, "--results", results)
    assert result.code == 0, result.err
    assert f"warm start from grow-search: took {theirs} finished trials (not trained again)" in result.out
    assert "warm start from grow-other-lr: took 0 finished trials" in result.out
    assert "2 did not fit: 2 with another train.lr" in result.out
    own = trials(results, "grow-warm")
    assert not set(own) & set(trials(results, "grow-search"))  # what they trained is not trained again
    replayed = 3 - len(own)  # the same seeded random draws as grow-search's first: answered with its results
    assert replayed == 0 or f"{replayed} proposal" in result.out
    borrowed = [t for t in study_of(results, "grow-warm").trials if "warm_start_from" in t.user_attrs]
    assert len(borrowed) == theirs and {t.user_attrs["warm_start_from"] for t in borrowed} == {"grow-search"}

    unknown = search_spec(folder, "grow-nowhere", 2, extra=", warm_start_from: [no-such-sweep]")
    missing = cli("run", unknown, "--results", results)
    assert missing.code == 2 and "search.warm_start_from" in missing.err and "no-such-sweep" in missing.err
    assert "Traceback" not in missing.err


def test_a_grid_grows_by_a_seed_and_trains_only_that_seed(cli, tmp_path):
    results = tmp_path / "r"
    spec = write_spec(
        tmp_path / "g.yaml",
        tiny_grid("grow-grid", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0]}"),
    )
    assert cli("run", spec, "--results", results).code == 0
    first = trials(results, "grow-grid")
    dry = cli("run", spec, "--results", results, "--set", "grid.seeds=[0, 1]", "--dry-run")
    assert dry.code == 0, dry.err
    assert "grows the sweep that ran: grid.seeds: [0] -> [0, 1]" in dry.out
    assert "4 planned" in dry.out and "2 done already; 2 to run" in dry.out

    grown = cli("run", spec, "--results", results, "--set", "grid.seeds=[0, 1]")
    assert grown.code == 0, grown.err
    assert "2 of 4 planned trials are done already; running 2" in grown.out
    rows = trials(results, "grow-grid")
    assert len(rows) == 4 and all(row["status"] == "done" for row in rows.values())
    for key, row in first.items():
        assert rows[key]["started_at"] == row["started_at"] and rows[key]["generation"] == 0
    added = [row for key, row in rows.items() if key not in first]
    assert {row["seed"] for row in added} == {1} and {row["generation"] for row in added} == {1}

    report = cli("report", "grow-grid", "--results", results, "--out", tmp_path / "report")
    assert report.code == 0, report.err
    text = (tmp_path / "report" / "report.md").read_text()
    assert "**Grown after the first run:** 1 of the 2 pairs" in text and "added_later" in text

    same = cli("run", spec, "--results", results, "--set", "grid.seeds=[0, 1]", "--set", "resources.cpu=2")
    assert same.code == 0 and "already complete" in same.out  # where and how it runs is not growth
    refused = cli("run", spec, "--results", results, "--set", "train.optimizer=adam")
    assert refused.code == 2 and "train.optimizer: sgd -> adam" in refused.err


def test_more_epochs_continue_each_trial_exactly_as_a_longer_sweep_trains_it(cli, tmp_path):
    results, grid = tmp_path / "r", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0]}"
    short = write_spec(tmp_path / "e.yaml", tiny_grid("grow-epochs", grid))
    assert cli("run", short, "--results", results).code == 0
    shorter = set(trials(results, "grow-epochs"))
    dry = cli("run", short, "--results", results, "--set", "train.epochs=3", "--dry-run")
    assert dry.code == 0 and "2 of them continue a shorter trial" in dry.out

    grown = cli("run", short, "--results", results, "--set", "train.epochs=3")
    assert grown.code == 0, grown.err
    assert "2 of them continue a shorter trial from its last checkpoint" in grown.out
    assert grown.out.count("after its epoch 1") == 2
    fresh = write_spec(tmp_path / "f.yaml", tiny_grid("fresh-epochs", grid).replace("epochs: 1", "epochs: 3"))
    assert cli("run", fresh, "--results", results).code == 0

    rows, expected = trials(results, "grow-epochs"), trials(results, "fresh-epochs")
    assert set(rows) == set(expected) and not shorter & set(rows)  # the 1-epoch rows gave way
    store = ResultsStore(results)
    for table, columns in (("epochs", ("test_acc", "test_loss", "egf")), ("layers", ("g_masked_l2", "g_l2"))):
        ours = store.rows(table, "grow-epochs")
        theirs = {_row_id(r): r for r in store.rows(table, "fresh-epochs")}
        assert len(ours) == len(theirs) and len(ours) > 0
        for row in ours:
            for column in columns:
                assert row[column] == theirs[_row_id(row)][column], (table, column, _row_id(row))
    assert all(rows[key]["epochs_done"] == 3 for key in rows)
    assert state_of(results, "grow-epochs")["history"][1]["epochs"] == [1, 3]


def test_more_epochs_of_a_schedule_that_spans_the_run_are_refused(cli, tmp_path):
    results = tmp_path / "r"
    text = tiny_grid("grow-cosine", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0]}")
    spec = write_spec(tmp_path / "c.yaml", text.replace("batch_size: 64", "batch_size: 64, schedule: cosine"))
    assert cli("run", spec, "--results", results).code == 0
    refused = cli("run", spec, "--results", results, "--set", "train.epochs=2")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "train.epochs: 1 -> 2" in refused.err and "cosine" in refused.err
    assert "Give it another name" in refused.err


def test_a_growth_stopped_midway_resumes_with_no_trial_lost_or_repeated(tmp_path):
    results = tmp_path / "r"
    text = tiny_grid("grow-resume", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0]}")
    text = (
        text.replace("epochs: 1,", "epochs: 16, checkpoint_every: 2,") + "ray: {max_concurrent_trials: 2}\n"
    )
    spec = write_spec(tmp_path / "g.yaml", text)
    assert drivers.sweep("run", spec, "--results", results).returncode == 0
    first = {t["trial_key"]: t["started_at"] for t in drivers.done_rows(results, "grow-resume")}
    spec.write_text(text.replace("seeds: [0]", "seeds: [0, 1, 2]"))
    proc = drivers.with_trials_done(spec, results, "grow-resume", 3)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert "growing sweep grow-resume (growth 1)" in output
    stopped = {t["trial_key"]: t["started_at"] for t in drivers.done_rows(results, "grow-resume")}

    resumed = drivers.sweep("resume", "grow-resume", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = ResultsStore(results).rows("trials", "grow-resume")
    keys = [row["trial_key"] for row in rows]
    assert len(keys) == len(set(keys)) == 6 and all(row["status"] == "done" for row in rows)
    for row in rows:  # none trained twice; the growth's trials carry its number
        assert row["started_at"] == stopped.get(row["trial_key"], row["started_at"])
        assert row["generation"] == (0 if row["trial_key"] in first else 1)
    state = state_of(results, "grow-resume")
    assert state["stage"] == "done" and state["generation"] == 1 and len(state["history"]) == 2
    assert state["history"][1]["trials_added"] == 4


def _row_id(row):
    return tuple(row.get(k) for k in ("trial_key", "epoch", "layer"))
