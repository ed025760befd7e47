"""A sweep exported to Weights & Biases offline (`WANDB_MODE=offline`, no network) and read back from W&B's
own offline files: one run per trial in the sweep's group, with its settings, every epoch at step = epoch, its
final metrics and its tags; the same runs when exported again; W&B missing or a folder that cannot be written
is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweep.cli import main
from sweep.errors import UserError
from sweep.store import ResultsStore
from sweep.trackers.runs import sweep_runs
from sweep.trackers.wandb_export import default_folder, export_wandb, run_id

from .conftest import TWO_TRIALS_EPOCHS as EPOCHS
from .wandb_files import offline_runs


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # not the user's settings
    monkeypatch.delenv("WANDB_PROJECT", raising=False)


def test_sweep_export_writes_one_offline_run_per_trial_with_its_epochs(two_trials, tmp_path, capsys):
    folder = tmp_path / "wb"
    code = main(["export", "tb", "--to", "wandb", "--uri", str(folder), "--results", str(two_trials)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"wandb: 2 offline runs of sweep tb in {folder / 'wandb'}; upload them: wandb sync" in out
    assert f"exported 2 trials of sweep tb to W&B ({folder / 'wandb'})" in out

    store = ResultsStore(two_trials)
    trials = {row["trial_key"]: row for row in store.rows("trials", "tb")}
    epochs = store.rows("epochs", "tb")
    runs = offline_runs(folder / "wandb")
    assert set(runs) == {run_id("tb", key) for key in trials}
    for key, trial in trials.items():
        run = runs[run_id("tb", key)]
        assert (run.name, run.group, run.job_type, run.exit_code) == (key, "tb", "single", 0)
        assert {f"trial_key={key}", "sweep=tb", f"method={trial['method']}", "status=done"} <= set(run.tags)
        assert run.config["sparsity.method"] == trial["method"]
        assert run.config["sparse_sweep"]["sweep"] == "tb"
        assert sorted(run.history) == list(range(EPOCHS + 1))
        mine = {row["epoch"]: row["test_acc"] for row in epochs if row["trial_key"] == key}
        assert {step: metrics["test_acc"] for step, metrics in run.history.items()} == pytest.approx(mine)
        layer_terms = [name for name in run.history[EPOCHS] if name.endswith("/g_masked_l2")]
        assert layer_terms and all(name.startswith("layer/") for name in layer_terms)
        assert run.summary["final/test_acc"] == pytest.approx(trial["test_acc"])


def test_exporting_again_replaces_each_run_and_adds_none(two_trials, tmp_path):
    runs = sweep_runs(ResultsStore(two_trials), "tb")
    lines: list[str] = []
    wandb_folder = export_wandb(runs, "tb", tmp_path, echo=lines.append)
    first = offline_runs(wandb_folder)
    export_wandb(runs, "tb", tmp_path, echo=lines.append)
    assert len(list(wandb_folder.glob("offline-run-*"))) == len(runs) == 2
    again = offline_runs(wandb_folder)
    assert {i: r.history for i, r in again.items()} == {i: r.history for i, r in first.items()}
    assert len(lines) == 2


def test_the_default_folder_is_the_local_results_folder_and_here_for_a_bucket(tmp_path):
    assert default_folder(str(tmp_path / "r")) == tmp_path / "r"
    assert default_folder(f"file://{tmp_path}/r") == tmp_path / "r"
    assert default_folder("s3://bucket/results") == Path.cwd()


def test_a_folder_that_cannot_be_written_is_one_line(two_trials, tmp_path):
    (tmp_path / "blocked").write_text("a file where the folder should be\n")
    with pytest.raises(UserError) as refused:
        export_wandb(sweep_runs(ResultsStore(two_trials), "tb"), "tb", tmp_path / "blocked", echo=print)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"wandb folder {tmp_path / 'blocked'} cannot be written"), line


def test_without_wandb_the_line_names_the_extra(two_trials, tmp_path, monkeypatch):
    runs = sweep_runs(ResultsStore(two_trials), "tb")
    for name in [n for n in sys.modules if n.split(".")[0] == "wandb"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets uninstalled
    with pytest.raises(UserError, match=r"pip install 'sparse-sweep\[wandb\]'") as refused:
        export_wandb(runs, "tb", tmp_path / "wb", echo=print)
    assert len(str(refused.value).splitlines()) == 1 and not (tmp_path / "wb").exists()


def test_online_is_only_for_wandb(two_trials, capsys):
    code = main(["export", "tb", "--to", "mlflow", "--online", "--results", str(two_trials)])
    err = capsys.readouterr().err
    assert code == 2 and "--online is for --to wandb" in err and len(err.strip().splitlines()) == 1
