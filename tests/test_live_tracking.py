"""A sweep tracked live in MLflow, TensorBoard and W&B at once (`sweep run --track ...`): its runs fill as
epochs arrive, a tracker killed mid-sweep costs no row, leaves the other trackers whole and says so in one
line, and `sweep export` then completes its runs. (The Ctrl-C and resume of a live-tracked sweep is
`test_sweeps.py::test_ctrl_c_then_resume`.)"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sweep.cli import main
from sweep.store import ResultsStore
from sweep.trackers.wandb_export import run_id

from .conftest import write_spec
from .mlflow_servers import QUIET_MLFLOW, free_port, history, rest, server_runs, start_server, stop_group
from .test_export_tensorboard import counts
from .wandb_files import offline_runs

SWEEP = "live"
EPOCHS = 4
GRID = f"""
name: {SWEEP}
kind: grid
dataset: {{name: synthetic, subset: 300}}
model: {{widths: [16, 8], densities: 0.5}}
train: {{epochs: {EPOCHS}, batch_size: 64}}
egf: {{samples: 64}}
grid: {{seeds: [0, 1], axes: {{sparsity.method: [random, snip]}}}}
ray: {{max_concurrent_trials: 1}}
"""


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch, tmp_path):
    for name, value in QUIET_MLFLOW.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def _tracked_runs(url: str) -> int:
    """How many of the sweep's trials the server holds a run with an epoch for (0 before any)."""
    try:
        experiment = rest(url, f"experiments/get-by-name?experiment_name={SWEEP}")["experiment"]
        found = rest(
            url, "runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 100}
        )
    except OSError:
        return 0
    return sum(1 for run in found.get("runs", []) if run["data"].get("metrics"))


@pytest.mark.slow
def test_a_tracker_killed_mid_sweep_costs_no_row_and_export_completes_the_runs(tmp_path, shared_ray, capsys):
    folder, port = tmp_path / "server", free_port()
    folder.mkdir()
    server, url = start_server(folder, port)
    killed = threading.Event()

    def kill_once_tracking() -> None:  # SIGKILL, as a server's machine goes, once the first runs arrived
        deadline = time.monotonic() + 240
        while _tracked_runs(url) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        killed.set()

    killer = threading.Thread(target=kill_once_tracking, daemon=True)
    killer.start()
    spec = write_spec(tmp_path / "live.yaml", GRID)
    results, wandb_folder = tmp_path / "r", tmp_path / "wb"
    trackers = ["--track", f"mlflow={url}", "--track", "tensorboard", "--track", f"wandb={wandb_folder}"]
    try:
        code = main(["run", str(spec), "--results", str(results), *trackers])
        killer.join(60)
        out = capsys.readouterr().out
        assert code == 0 and killed.is_set(), out
        store = ResultsStore(results)
        trials = store.rows("trials", SWEEP)
        assert len(trials) == 4 and {t["status"] for t in trials} == {"done"}
        assert len(store.rows("epochs", SWEEP)) == 4 * (EPOCHS + 1)
        (line,) = [line for line in out.splitlines() if line.startswith("tracking: ")]
        assert f"MLflow at {url} failed, so the sweep goes on untracked there with its tables whole" in line
        assert line.endswith(f"fill the runs afterwards: sweep export {SWEEP} --to mlflow --uri {url} "
                             f"--results {results}")  # fmt: skip
        # The other trackers went on to the end: every trial's every epoch, as the tables hold them.
        keys = sorted(t["trial_key"] for t in trials)
        steps = {key: scalars["test_acc"] for key, scalars in counts(results / "tensorboard" / SWEEP).items()}
        assert steps == {key: list(range(EPOCHS + 1)) for key in keys}
        runs = offline_runs(wandb_folder / "wandb")
        assert sorted(runs) == sorted(run_id(SWEEP, key) for key in keys)
        assert all(sorted(run.history) == list(range(EPOCHS + 1)) for run in runs.values())
        assert {run.exit_code for run in runs.values()} == {0}
        assert not [tag for run in runs.values() for tag in run.tags if tag.startswith("pareto=")]

        server, url = start_server(folder, port)  # the same store, back
        assert main(["export", SWEEP, "--to", "mlflow", "--uri", url, "--results", str(results)]) == 0
        parent, children = server_runs(url, SWEEP)
        assert sorted(c["tags"]["sparse_sweep.trial_key"] for c in children) == sorted(
            t["trial_key"] for t in trials
        )
        for child in children:
            steps = [step for step, _ in history(url, child["info"]["run_id"], "test_acc")]
            assert steps == list(range(EPOCHS + 1)), child["info"]["run_name"]
            assert child["info"]["status"] == "FINISHED"
        assert parent["info"]["status"] == "FINISHED"
    finally:
        stop_group(server)


def test_a_tracking_uri_with_credentials_is_refused_in_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path / "live.yaml", GRID)
    code = main(
        ["run", str(spec), "--results", str(tmp_path / "r"), "--track", "mlflow=http://al:s3cret@h:5000"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "s3cret" not in err and len(err.strip().splitlines()) == 1, err
    assert "put no credentials in the URI" in err and "MLFLOW_TRACKING_PASSWORD" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (["neptune"], "--track neptune: unknown tracker"),
        (["wandb", "wandb=x"], "--track wandb=x: given twice"),
    ],
)
def test_an_unknown_or_repeated_tracker_is_refused_in_one_line(tmp_path, capsys, options, why):
    spec = write_spec(tmp_path / "live.yaml", GRID)
    tracks = [word for option in options for word in ("--track", option)]
    code = main(["run", str(spec), "--results", str(tmp_path / "r"), *tracks])
    err = capsys.readouterr().err
    assert code == 2 and why in err and len(err.strip().splitlines()) == 1, err


def test_the_specs_track_section_names_each_tracker_and_a_typo_is_one_line(tmp_path, capsys):
    from sweep.cli.tracking import live_tracker, with_track_option
    from sweep.spec import load_spec

    text = GRID + "track: {mlflow: {uri: null}, tensorboard: {logdir: tb}, wandb: {online: true}}\n"
    spec = load_spec(write_spec(tmp_path / "tracked.yaml", text))
    trackers = live_tracker(spec, str(tmp_path / "r"))
    labels = [tracker.sink.label for tracker in trackers.trackers]
    mlflow = f"MLflow at sqlite:///{tmp_path / 'mlflow.db'}"
    assert labels == [mlflow, f"TensorBoard in tb/{SWEEP}", "W&B online"]
    only = live_tracker(with_track_option(spec, ["wandb=wb"]), str(tmp_path / "r"))  # the option replaces
    assert [tracker.sink.label for tracker in only.trackers] == ["W&B offline in wb/wandb"]
    assert live_tracker(with_track_option(spec, ["none"]), str(tmp_path / "r")) is None

    typo = write_spec(tmp_path / "typo.yaml", GRID + "track: {wandb: {onlin: true}}\n")
    code = main(["run", str(typo), "--dry-run", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "onlin" in err and len(err.strip().splitlines()) == 1, err
