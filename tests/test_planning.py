"""What a sweep tells before and while it runs: the dry run (no Ray, nothing written), the progress clock,
and the search's Optuna study in the results, readable with Optuna itself."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweep.store import ResultsStore

from .conftest import write_spec

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]

GRID = """
name: planned
kind: sc_sdc
dataset: {name: synthetic}
train: {optimizer: momentum, lr: 0.05, epochs: 3, batch_size: 64}
egf: {samples: 128}
grid: {sparse_width: 32, ratios: [0.25, 0.5], depths: [1], seeds: [0]}
"""
DRY = """
import sys
from sweep.cli import main
code = main(sys.argv[1:])
print("ray loaded:", "ray" in sys.modules)
sys.exit(code)
"""


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_a_dry_run_counts_what_would_run_estimates_it_and_starts_nothing(cli, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID)
    results = tmp_path / "r"
    fresh = subprocess.run(
        [sys.executable, "-c", DRY, "run", spec, "--results", results, "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert (
        "trials: 4 planned (2 ratios x 1 depth x 1 seed x 2 roles: 4 distinct); 0 done already"
        in fresh.stdout
    )
    assert "estimate: none: the results folder holds no trials yet" in fresh.stdout
    assert "ray loaded: False" in fresh.stdout and not results.exists()

    ran = cli("run", spec, "--results", results)
    assert ran.code == 0, ran.err
    assert "elapsed" in ran.out  # the progress lines carry the clock
    before = listing(results)
    grown = cli("run", spec, "--results", results, "--dry-run", "--set", "grid.seeds=[0, 1, 2]")
    assert grown.code == 0, grown.err
    assert (
        "trials: 12 planned (2 ratios x 1 depth x 3 seeds x 2 roles: 12 distinct); 4 done already; 8 to run"
        in (grown.out)
    )
    assert "slots: 2 at a time" in grown.out or "slots: 1 at a time" in grown.out
    assert "estimate: about" in grown.out and "from similar trials in the tables" in grown.out
    assert listing(results) == before  # nothing written


def test_the_search_keeps_its_optuna_study_in_the_results(cli, tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        """
name: studied
kind: snas
dataset: {name: synthetic}
model: {widths: [16]}
train: {epochs: 1, batch_size: 64}
egf: {samples: 64}
search: {num_samples: 5, sampler: tpe, density_levels: [0.1, 0.3, 1.0], seed: 0}
""",
    )
    result = cli("run", spec, "--results", tmp_path / "r")
    assert result.code == 0, result.err
    journal = tmp_path / "r" / "_sweeps" / "studied.optuna.log"
    assert f"optuna-dashboard {journal}" in result.out
    study = optuna.load_study(study_name="studied", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert len(study.trials) == 5 and {t.state.name for t in study.trials} == {"COMPLETE"}
    rows = {row["trial_key"]: row for row in ResultsStore(tmp_path / "r").rows("trials", "studied")}
    for trial in study.trials:  # each Optuna trial names its rows, and its value is their validation accuracy
        row = rows[trial.user_attrs["trial_key"]]
        assert trial.values == [row["val_acc"]] and trial.user_attrs["role"] == row["role"]
