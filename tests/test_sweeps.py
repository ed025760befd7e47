"""Sweeps on a real Ray with real Optuna: SNAS, NSGA-II, SC-SDC, failures, a killed driver and resume."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal

import optuna
import pytest
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.engine.search.searcher import make_searcher
from sweep.plans.sc_sdc import sc_sdc_trials
from sweep.plans.snas import make_template
from sweep.plans.types import PLANNED
from sweep.spec import load_spec, parse_spec
from sweep.store import ResultsStore, query

from . import drivers
from .conftest import ROOT, SPECS, needs_fashion, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]

LEVELS = [0.05, 0.1, 0.2, 0.5, 1.0]
SNAS = f"""
name: snas-test
kind: snas
dataset: {{name: fashion_mnist, subset: 3000, test_subset: 1000, val_fraction: 0.2}}
model: {{widths: [64, 32]}}
train: {{optimizer: momentum, lr: 0.05, epochs: 1, batch_size: 64}}
egf: {{samples: 256}}
search: {{num_samples: 4, sampler: tpe, density_levels: {LEVELS}, warm_start_density: 0.1, seed: 3}}
"""
GRID = """
name: grid-test
kind: sc_sdc
dataset: {name: synthetic}
train: {optimizer: momentum, lr: 0.05, epochs: 2, batch_size: 64}
egf: {samples: 256}
grid: {sparse_width: 48, ratios: [0.25, 0.5], depths: [1, 2], seeds: [0]}
"""


def rows(root, sweep):
    return ResultsStore(root).rows("trials", sweep)


def first_proposals(spec, input_shape, num_classes, n, journal) -> list[dict]:
    """The first `n` trials the searcher proposes for a spec (what a sweep would start with)."""
    searcher = make_searcher(spec, make_template(spec, input_shape, num_classes), str(journal))
    searcher.set_search_properties(None, None, {})
    proposals = [searcher.suggest(f"trial_{i}") for i in range(n)]
    return [{k: v for k, v in p.items() if k != PLANNED} for p in proposals]


@needs_fashion
def test_snas_sweep_writes_a_row_per_trial_with_densities_from_the_levels(cli, tmp_path):
    result = cli("run", write_spec(tmp_path / "s.yaml", SNAS), "--results", tmp_path / "r")
    assert result.code == 0, result.err
    assert "leaderboard of snas-test" in result.out
    trials = rows(tmp_path / "r", "snas-test")
    assert 1 <= len(trials) <= 4  # TPE may propose a trial twice; one row per distinct trial
    assert {t["role"] for t in trials} <= {"warm_start", "search"}
    assert any(t["role"] == "warm_start" for t in trials)
    for trial in trials:
        assert trial["status"] == "done" and trial["kind"] == "snas"
        asked = json.loads(trial["config"])["model"]["densities"]
        assert all(d in LEVELS for d in asked)
        for level, actual, shape in zip(
            asked, trial["densities"], [(64, 784), (32, 64), (10, 32)], strict=True
        ):
            assert actual == pytest.approx(level, abs=1 / math.prod(shape))
    epochs = query(
        ResultsStore(tmp_path / "r"), "SELECT trial_key, count(*) AS n FROM epochs GROUP BY trial_key"
    )
    assert sorted(epochs["trial_key"]) == sorted(t["trial_key"] for t in trials)
    assert set(epochs["n"]) == {2}  # epoch 0 and epoch 1
    again = cli("run", write_spec(tmp_path / "s.yaml", SNAS), "--results", tmp_path / "r")
    assert again.code == 0 and "already complete" in again.out
    assert len(rows(tmp_path / "r", "snas-test")) == len(trials)


def test_a_configuration_proposed_again_is_replayed_not_retrained(cli, tmp_path):
    """A search space of one point: every proposal after the first is the same configuration. One trial at a
    time, so the first has finished when the others start; they hand its result back without training."""
    spec = write_spec(
        tmp_path / "s.yaml",
        """
name: one-point
kind: snas
dataset: {name: synthetic}
model: {widths: [16]}
train: {epochs: 2, batch_size: 64}
egf: {samples: 128}
search: {num_samples: 3, sampler: random, density_levels: [0.5], warm_start_density: null, seed: 0}
ray: {max_concurrent_trials: 1}
""",
    )
    result = cli("run", spec, "--results", tmp_path / "r")
    assert result.code == 0, result.err
    assert result.out.count("] done") == 1 and result.out.count("] replayed") == 2, result.out
    (trial,) = rows(tmp_path / "r", "one-point")
    epochs = query(ResultsStore(tmp_path / "r"), "SELECT epoch, test_acc FROM epochs ORDER BY epoch")
    assert list(epochs["epoch"]) == [0, 1, 2]  # trained once
    assert trial["test_acc"] == pytest.approx(epochs["test_acc"].iloc[-1])
    assert f"val_acc {trial['val_acc']:.4f}" in result.out.split("] replayed")[1]  # the searcher got it


def test_nsga2_marks_a_pareto_set(cli, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        """
name: nsga
kind: snas
dataset: {name: synthetic}
model: {widths: [32]}
train: {epochs: 1, batch_size: 64, lr: 0.05, optimizer: momentum}
egf: {samples: 128}
search: {num_samples: 4, sampler: nsga2, metric: test_acc, density_levels: [0.1, 0.3, 1.0], seed: 1,
         max_active_weights: 3000}
""",
    )
    result = cli("run", spec, "--results", tmp_path / "r")
    assert result.code == 0, result.err
    trials = rows(tmp_path / "r", "nsga")
    front = [t for t in trials if t["pareto"]]
    assert front
    assert all(t["pareto"] is not None for t in trials)
    assert all(t["feasible"] == (t["active_weights"] <= 3000) for t in trials)
    # trials over the budget are shown as such and never ranked best: not in the progress, the leaderboard
    # or the status line
    over = [t for t in trials if not t["feasible"]]
    assert over and result.out.count("] infeasible") == len(over)
    best = max((t for t in trials if t["feasible"]), key=lambda t: t["test_acc"])
    board = result.out.split("leaderboard of nsga")[1].splitlines()
    assert board[2].split()[:2] == ["1", best["trial_key"]], board
    status = cli("status", "nsga", "--results", tmp_path / "r")
    assert f"test_acc {best['test_acc']:.4f}" in status.out
    for row in front:  # nothing on the front is beaten on both objectives
        assert not any(
            o["test_acc"] >= row["test_acc"] and o["active_weights"] < row["active_weights"]
            for o in trials
            if o["feasible"] and o["status"] == "done"
        )


def test_same_seed_proposes_the_same_first_trials(tmp_path):
    spec = parse_spec(
        {
            "name": "s",
            "kind": "snas",
            "model": {"widths": [300, 100]},
            "search": {"sampler": "tpe", "seed": 7, "num_samples": 20},
        }
    )
    a = first_proposals(spec, (1, 28, 28), 10, 6, tmp_path / "a.log")
    b = first_proposals(spec, (1, 28, 28), 10, 6, tmp_path / "b.log")
    reseeded = dataclasses.replace(spec, search=dataclasses.replace(spec.search, seed=8))
    other = first_proposals(reseeded, (1, 28, 28), 10, 6, tmp_path / "c.log")
    assert a == b
    assert a[:2] == other[:2]  # the warm starts: uniform and ERK at 10%
    assert a[2:] != other[2:]
    assert a[0] == {"density_0": 0.1, "density_1": 0.1, "density_out": 0.1}


def test_sc_sdc_pairs_match_capacity(cli, tmp_path):
    result = cli("run", write_spec(tmp_path / "g.yaml", GRID), "--results", tmp_path / "r")
    assert result.code == 0, result.err
    trials = rows(tmp_path / "r", "grid-test")
    assert len(trials) == 2 * 2 * 2
    pairs: dict[str, dict[str, dict]] = {}
    for t in trials:
        pairs.setdefault(t["pair_id"], {})[t["role"]] = t
    assert len(pairs) == 4
    for pair in pairs.values():
        sparse, dense = pair["sparse"], pair["dense"]
        assert abs(sparse["active_weights"] - dense["active_weights"]) <= 0.01 * dense["active_weights"]
        assert sparse["widths"] == [48] * sparse["depth"] and dense["density"] == 1.0
        assert sparse["seed"] == dense["seed"] and sparse["status"] == dense["status"] == "done"
        # backend auto: the 1/16-dense hidden layer of depth 2 runs on sparse kernels, dense nets never do
        assert "sparse" not in dense["layer_backends"]
        if sparse["depth"] == 2 and sparse["densities"][1] < 0.1:
            assert sparse["layer_backends"][1] == "sparse"
    by_role = query(
        ResultsStore(tmp_path / "r"), "SELECT role, avg(test_acc) AS acc FROM trials GROUP BY role"
    )
    assert set(by_role["role"]) == {"sparse", "dense"}


def test_a_failing_trial_gets_an_error_row_and_the_sweep_finishes(cli, tmp_path):
    spec = write_spec(
        tmp_path / "g.yaml",
        GRID.replace("seeds: [0]}", "seeds: [0], axes: {train.device: [cpu, cuda]}}").replace(
            "ratios: [0.25, 0.5], depths: [1, 2]", "ratios: [0.5], depths: [1]"
        ),
    )
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so no trial fails")
    result = cli("run", spec, "--results", tmp_path / "r")
    assert result.code == 0, result.err  # not every trial failed
    trials = rows(tmp_path / "r", "grid-test")
    failed = [t for t in trials if t["status"] == "error"]
    assert len(trials) == 4 and len(failed) == 2
    assert all("no CUDA device" in t["error"] for t in failed)
    assert all(t["status"] == "done" for t in trials if t not in failed)


def test_unreachable_address_is_a_clear_error(cli, tmp_path):
    result = cli(
        "run", write_spec(tmp_path / "g.yaml", GRID), "--results", tmp_path / "r", "--address", "127.0.0.1:1"
    )
    assert result.code == 2
    assert "ray.address 127.0.0.1:1: cannot reach 127.0.0.1:1" in result.err
    assert "Traceback" not in result.err


def test_resume_of_an_unknown_sweep(cli, tmp_path):
    result = cli("resume", "nothing-here", "--results", tmp_path)
    assert result.code == 2 and "no sweep named 'nothing-here'" in result.err


def test_shipped_sweep_specs_expand(tmp_path):
    grid = load_spec(SPECS / "sc_sdc_mlp_fashion.yaml")
    assert len(sc_sdc_trials(grid)) == 2 * 5 * 3 * 3 * 3 * 2 * 2
    for name in ("quickstart", "snas_mlp_fashion", "snas_cnn_fashion"):
        spec = load_spec(SPECS / f"{name}.yaml")
        assert spec.kind == "snas" and first_proposals(spec, (1, 28, 28), 10, 3, tmp_path / f"{name}.log")
    assert (ROOT / "cluster" / "local_head.sh").exists()


def test_ctrl_c_then_resume(tmp_path):
    """Ctrl-C (SIGINT to the driver's process group, as a terminal sends it): the sweep stops with its
    state saved and says how to go on; `sweep resume` finishes it. Tracked live in MLflow (`--track`, kept
    in the sweep's spec for the resume), each trial is one run that logs each epoch once."""
    from mlflow.tracking import MlflowClient

    spec = write_spec(tmp_path / "g.yaml", GRID.replace("epochs: 2", "epochs: 16"))
    results, tracking = tmp_path / "r", f"sqlite:///{tmp_path / 'live.db'}"
    proc = drivers.with_trials_done(spec, results, "grid-test", 1, "--track", f"mlflow={tracking}")
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert "sweep grid-test was interrupted; continue it with 'sweep resume grid-test" in output
    assert f"tracking sweep grid-test live in MLflow at {tracking}" in output
    assert ResultsStore(results).sweep_state("grid-test").stage == "main"
    again = drivers.sweep("run", spec, "--results", results)
    assert again.returncode == 2
    assert "was interrupted; no driver runs it now: continue it with 'sweep resume grid-test" in again.stderr

    resumed = drivers.sweep("resume", "grid-test", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Failed to fetch metrics" not in resumed.stderr  # Tune's restore noise stays quiet
    assert "tracking sweep grid-test live in MLflow" in resumed.stdout and "tracking:" not in resumed.stdout
    trials = rows(results, "grid-test")
    assert sorted(t["trial_key"] for t in trials) == sorted(
        p.config.key for p in sc_sdc_trials(load_spec(spec))
    )
    assert all(t["status"] == "done" for t in trials)

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("grid-test").experiment_id
    runs = client.search_runs([experiment], "tags.`sparse_sweep.trial_key` != ''", max_results=1000)
    assert sorted(run.data.tags["sparse_sweep.trial_key"] for run in runs) == sorted(
        t["trial_key"] for t in trials
    )
    epochs = ResultsStore(results).rows("epochs", "grid-test")
    for run in runs:
        key = run.data.tags["sparse_sweep.trial_key"]
        logged = [m.step for m in client.get_metric_history(run.info.run_id, "test_acc")]
        assert (
            sorted(logged) == sorted(e["epoch"] for e in epochs if e["trial_key"] == key) == list(range(17))
        )


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
def test_ctrl_c_then_resume_a_search(tmp_path, sampler):
    """A search stopped mid-trial continues its Optuna study: every proposal once, the trials cut short
    continue from their checkpoints, finished ones are not trained again, and Optuna stays quiet."""
    spec = write_spec(
        tmp_path / "s.yaml",
        f"""
name: search-resume
kind: snas
dataset: {{name: synthetic}}
model: {{widths: [32, 16]}}
train: {{optimizer: momentum, lr: 0.05, epochs: 24, batch_size: 64, checkpoint_every: 2}}
egf: {{samples: 128}}
search: {{num_samples: 5, sampler: {sampler}, density_levels: [0.1, 0.2, 0.5, 1.0], seed: 5}}
ray: {{max_concurrent_trials: 2}}
""",
    )
    results = tmp_path / "r"
    proc = drivers.start("run", spec, "--results", results)

    def one_done_and_one_checkpointed() -> bool:
        done = {t["trial_key"] for t in drivers.done_rows(results, "search-resume")}
        try:
            epochs = ResultsStore(results).rows("epochs", "search-resume")
        except Exception:  # nothing written yet, or a file being replaced
            return False
        reached: dict[str, int] = {}
        for e in epochs:
            reached[e["trial_key"]] = max(e["epoch"], reached.get(e["trial_key"], 0))
        # one trial past a checkpoint and far from its end, so that Ctrl-C surely cuts it short
        return bool(done) and any(key not in done and 3 <= last <= 14 for key, last in reached.items())

    drivers.wait_for(one_done_and_one_checkpointed, proc, every=0.1)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    before = {t["trial_key"]: t["started_at"] for t in drivers.done_rows(results, "search-resume")}

    resumed = drivers.sweep("resume", "search-resume", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Warning" not in resumed.stderr, resumed.stderr
    assert "continues after epoch" in resumed.stdout  # a trial cut short went on from its checkpoint
    trials = rows(results, "search-resume")
    keys = [t["trial_key"] for t in trials]
    assert len(keys) == len(set(keys)) and all(t["status"] == "done" for t in trials)
    for trial in trials:
        if trial["trial_key"] in before:
            assert trial["started_at"] == before[trial["trial_key"]]
    storage = JournalStorage(JournalFileBackend(str(results / "_sweeps" / "search-resume.optuna.log")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5  # five proposals, once
    assert {t.user_attrs["trial_key"] for t in study.trials} == set(keys)  # replays share a key
    names = ["val_acc", "active_weights"] if sampler == "nsga2" else ["val_acc"]
    assert study.metric_names == names  # what optuna-dashboard shows
