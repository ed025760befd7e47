"""A sweep exported to MLflow: a real small sweep's tables, a real `mlflow server` read back through its REST
API and the default SQLite store read back with an `MlflowClient`; once per trial, and again adds nothing."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep.errors import UserError
from sweep.store import ResultsStore
from sweep.trackers.mlflow_export import default_uri, export_mlflow
from sweep.trackers.runs import EPOCH_METRICS, FINAL_METRICS, LAYER_METRICS, TrialRun, sweep_runs

from .conftest import write_spec
from .mlflow_servers import QUIET_MLFLOW, free_port, history, server_runs, start_server, stop_group

SWEEP = "tracked"
GRID = f"""
name: {SWEEP}
kind: grid
dataset: {{name: synthetic, subset: 300}}
model: {{widths: [16, 8], densities: 0.5}}
train: {{epochs: 2, batch_size: 64}}
egf: {{samples: 64}}
grid: {{seeds: [0, 1], axes: {{sparsity.method: [random, snip]}}}}
"""


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch):
    for name, value in QUIET_MLFLOW.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, shared_ray) -> tuple[Path, list[TrialRun]]:
    """A 4-trial grid of 2 epochs, run for real: its results folder and its runs."""
    from sweep.cli import main

    root = tmp_path_factory.mktemp("tracked")
    assert main(["run", str(write_spec(root / "grid.yaml", GRID)), "--results", str(root / "r")]) == 0
    runs = sweep_runs(ResultsStore(str(root / "r")), SWEEP)
    assert len(runs) == 4 and all(sorted(run.steps) == [0, 1, 2] for run in runs)
    return root / "r", runs


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 with a SQLite store, stopped by its process group."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    server, url = start_server(folder, free_port())
    try:
        yield url
    finally:
        stop_group(server)


def _server_runs(url: str) -> tuple[dict, list[dict]]:
    return server_runs(url, SWEEP)


@pytest.mark.slow
def test_a_sweep_is_one_parent_and_one_run_per_trial_on_a_server_and_again_adds_nothing(swept, mlflow_server):
    results, runs = swept
    exported = subprocess.run(  # through the command, as a user exports
        [sys.executable, "-m", "sweep", "export", SWEEP, "--to", "mlflow", "--uri", mlflow_server,
         "--results", str(results)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stdout + exported.stderr
    lines = exported.stdout.strip().splitlines()
    assert "(4 new, 0 updated, 0 unchanged" in lines[0] and len(lines) == 2
    parent, children = _server_runs(mlflow_server)
    assert lines[1] == f"open them: {mlflow_server}/#/experiments/{parent['info']['experiment_id']}"
    assert parent["info"]["run_name"] == SWEEP and parent["info"]["status"] == "FINISHED"
    trials = {run.trial_key: run for run in runs}
    assert sorted(child["info"]["run_name"] for child in children) == sorted(trials)
    methods = sorted(child["params"]["sparsity.method"] for child in children)
    assert methods == ["random", "random", "snip", "snip"]
    assert sorted(child["params"]["train.seed"] for child in children) == ["0", "0", "1", "1"]
    lengths = {}
    for child in children:
        run_id, trial = child["info"]["run_id"], trials[child["info"]["run_name"]]
        assert child["tags"]["mlflow.parentRunId"] == parent["info"]["run_id"]
        assert child["tags"]["trial_key"] == child["tags"]["sparse_sweep.trial_key"] == trial.trial_key
        assert child["tags"]["sparse_sweep.method"] == child["params"]["sparsity.method"]
        assert child["info"]["status"] == "FINISHED" and child["tags"]["sparse_sweep.last_step"] == "2"
        expected = [(step, pytest.approx(trial.steps[step]["test_acc"])) for step in (0, 1, 2)]
        assert history(mlflow_server, run_id, "test_acc") == expected
        layer = next(key for key in trial.steps[2] if key.startswith("layer/") and key.endswith("/density"))
        assert [step for step, _ in history(mlflow_server, run_id, layer)] == [0, 1, 2]
        final = history(mlflow_server, run_id, "final/test_acc")
        assert final == [(2, pytest.approx(trial.final["test_acc"]))]
        lengths[run_id] = {key: len(history(mlflow_server, run_id, key)) for key in ("test_acc", layer)}

    lines: list[str] = []
    export_mlflow(runs, SWEEP, mlflow_server, lines.append)
    assert "(0 new, 0 updated, 4 unchanged" in lines[0]
    again_parent, again = _server_runs(mlflow_server)
    assert again_parent["info"]["run_id"] == parent["info"]["run_id"] and len(again) == 4
    for run_id, counts in lengths.items():
        assert {key: len(history(mlflow_server, run_id, key)) for key in counts} == counts


@pytest.mark.slow
def test_the_default_store_is_sqlite_beside_the_results_and_takes_new_epochs_only(swept):
    from mlflow.tracking import MlflowClient

    root, runs = swept
    uri = default_uri(str(root))
    assert uri == f"sqlite:///{root.parent / 'mlflow.db'}"
    started = copy.deepcopy(runs)  # the sweep while it ran: one epoch done, no final metrics yet
    for run in started:
        run.steps.pop(2)
        run.final, run.tags["status"] = {}, "running"
    assert "(4 new" in _export(started, uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(SWEEP)
    children = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    assert len(children) == 4 and {run.info.status for run in children} == {"RUNNING"}
    assert {run.data.tags["sparse_sweep.last_step"] for run in children} == {"1"}

    assert "(0 new, 4 updated, 0 unchanged" in _export(runs, uri)  # the sweep at its end
    assert "(0 new, 0 updated, 4 unchanged" in _export(runs, uri)
    children = client.search_runs([experiment.experiment_id], "tags.trial_key != ''")
    assert len(children) == 4 and {run.info.status for run in children} == {"FINISHED"}
    for child in children:
        run_id = child.info.run_id
        assert [m.step for m in client.get_metric_history(run_id, "test_acc")] == [0, 1, 2]
        assert [m.step for m in client.get_metric_history(run_id, "final/test_acc")] == [2]
        assert child.data.tags["sparse_sweep.status"] == "done"
    parent = client.search_runs([experiment.experiment_id], "tags.`sparse_sweep.sweep_run` = 'true'")[0]
    assert parent.info.status == "FINISHED"
    export_mlflow(runs[:1], SWEEP, uri, print, sweep_ended=False)  # a live round of the sweep resumed
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"
    export_mlflow([], SWEEP, uri, print)  # its end
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"

    changed = copy.deepcopy(runs)
    changed[1].params["train.lr"] = "0.5"
    with pytest.raises(UserError) as refused:
        _export(changed, uri)
    (line,) = str(refused.value).splitlines()
    assert changed[1].trial_key in line and "train.lr" in line and "'0.5'" in line


def _export(runs: list[TrialRun], uri: str) -> str:
    lines: list[str] = []
    export_mlflow(runs, SWEEP, uri, lines.append)
    return lines[0]


def test_a_server_that_is_away_is_one_line_at_once_without_its_credentials(tmp_path):
    retries, started = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"), time.monotonic()
    with pytest.raises(UserError) as away:
        export_mlflow(_synthetic(1), SWEEP, f"http://alice:s3cret@127.0.0.1:{free_port()}", print)
    assert time.monotonic() - started < 20
    (line,) = str(away.value).splitlines()
    assert "not reachable (connection refused" in line and "s3cret" not in line and "***@127.0.0.1" in line
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == retries  # set for the export only


def test_mlflow_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(UserError, match=r"pip install 'sparse-sweep\[mlflow\]'"):
        export_mlflow(_synthetic(1), SWEEP, "sqlite:///never.db", print)


def test_the_default_store_for_a_bucket_or_a_file_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_uri("s3://bucket/results") == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert default_uri(f"file://{tmp_path}/a/results") == f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}"
    assert default_uri("results") == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_large_runs_go_in_batches_within_mlflows_limits_and_a_refused_name_is_one_line(tmp_path, monkeypatch):
    """Params, tags and metrics over one call's limits: every call within them, a long param cut with a
    mark, and the last step told only once its metrics are all written. A name MLflow refuses is one line
    that names the trial."""
    from mlflow.tracking import MlflowClient

    calls = _count_calls(monkeypatch)
    (run,) = _synthetic(1, epochs=3, layers=100)  # 13 + 500 metrics a step
    run.params |= {f"extra.p{i}": str(i) for i in range(150)} | {"long": "x" * 7000}
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    export_mlflow([run], SWEEP, uri, print)
    batches = calls["log_batch"]
    assert len(batches) == 3
    for i, (metrics, params, tags) in enumerate(batches):
        assert len(metrics) <= 1000 and len(params) <= 100 and len(tags) <= 100
        assert len(metrics) + len(params) + len(tags) <= 1000
        for told in (int(tag.value) for tag in tags if tag.key == "sparse_sweep.last_step"):
            assert all(m.step > told for later in batches[i + 1 :] for m in later[0])  # that step is all sent
    told = [tag.value for _, _, tags in batches for tag in tags if tag.key == "sparse_sweep.last_step"]
    assert told == ["0", "2"]
    client = MlflowClient(tracking_uri=uri)
    (held,) = client.search_runs([client.get_experiment_by_name(SWEEP).experiment_id], "tags.trial_key != ''")
    assert len(held.data.params) == len(run.params) and held.data.params["long"].endswith("...[truncated]")
    assert len(held.data.params["long"]) == 6000
    key = "layer/fc.99/density"
    assert [m.step for m in client.get_metric_history(held.info.run_id, key)] == [0, 1, 2]

    bad = _synthetic(2, epochs=1)[1]
    bad.steps[0]["layer/../escape"] = 1.0
    with pytest.raises(UserError) as refused:
        export_mlflow([run, bad], SWEEP, uri, print)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"trial {bad.trial_key}: MLflow at {uri}: ") and "layer/../escape" in line


@pytest.mark.slow
def test_a_search_exports_in_a_few_requests_a_trial_and_again_in_none(tmp_path, monkeypatch, capsys):
    """100 trials of a search of 10 epochs (11 steps of 28 metrics, 57 params, 17 final metrics a trial):
    three write requests a trial, whatever its metrics; exporting again writes nothing. (A 1,000-trial search
    took 44 s into a local SQLite store on an idle 2-core machine, nearly all in MLflow's store.)"""
    runs = _synthetic(100)
    calls = _count_calls(monkeypatch)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    started = time.monotonic()
    first = _export(runs, uri)
    seconds = time.monotonic() - started
    requests = sum(len(found) for found in calls.values())
    again = _export(runs, uri)
    with capsys.disabled():
        print(f"\n100 trials: {seconds:.1f}s, {requests} write requests")
    assert "(100 new, 0 updated, 0 unchanged" in first and "(0 new, 0 updated, 100 unchanged" in again
    assert requests <= 3 * len(runs) + 2  # create, log_batch, set_terminated; the parent's two
    assert sum(len(found) for found in calls.values()) == requests  # again: no write at all


def test_many_runs_are_written_by_worker_processes_and_a_refusal_there_is_one_line(tmp_path, monkeypatch):
    """Past MIN_SHARE runs a worker, an export spreads its runs over worker processes (forced here with a
    share of 3): every run whole, each step once; a value the store refuses in a worker still names its
    trial in one line."""
    from mlflow.tracking import MlflowClient

    from sweep.trackers import mlflow_writes

    def here(*_args) -> None:
        raise AssertionError("written in this process, not by the workers")

    monkeypatch.setattr(mlflow_writes, "MIN_SHARE", 3)
    monkeypatch.setattr(mlflow_writes, "_write", here)
    runs, uri = _synthetic(6, epochs=2), f"sqlite:///{tmp_path / 'm.db'}"
    assert "(6 new, 0 updated, 0 unchanged" in _export(runs, uri)
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == SWEEP]
    held_runs = client.search_runs([experiment.experiment_id])
    found = {r.data.tags.get("sparse_sweep.trial_key"): r for r in held_runs}
    assert set(found) == {run.trial_key for run in runs} | {None}  # None: the sweep's parent run
    for run in runs:
        held = found[run.trial_key]
        assert held.info.status == "FINISHED" and held.data.params == run.params
        assert [m.step for m in client.get_metric_history(held.info.run_id, "test_acc")] == [0, 1]

    bad = _synthetic(6, epochs=1)
    bad[4].steps[0]["layer/../escape"] = 1.0
    with pytest.raises(UserError) as refused:
        export_mlflow(bad, "refused", uri, print)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"trial {bad[4].trial_key}: MLflow at {uri}: ") and "escape" in line


def _count_calls(monkeypatch) -> dict[str, list]:
    from mlflow.tracking import MlflowClient

    calls: dict[str, list] = {"create_run": [], "log_batch": [], "set_terminated": []}
    for name in calls:
        original = getattr(MlflowClient, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if _name == "log_batch":
                calls[_name].append((list(args[1]), list(args[2]), list(args[3])))
            else:
                calls[_name].append(args)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, name, counted)
    return calls


def _synthetic(count: int, epochs: int = 11, layers: int = 3) -> list[TrialRun]:
    """Trials shaped like a search's: 13 epoch metrics and 5 per layer a step, 57 params, 17 final metrics."""
    runs = []
    for i in range(count):
        key = f"{i:016x}"
        run = TrialRun(SWEEP, key, params={f"section.p{j}": str(i * j) for j in range(57)})
        run.tags = {"sweep": SWEEP, "trial_key": key, "pareto": "false", "kind": "snas", "status": "done"}
        for step in range(epochs):
            run.steps[step] = {name: 0.01 * step + i for name in EPOCH_METRICS}
            run.steps[step] |= {f"layer/fc.{n}/{name}": 0.5 for n in range(layers) for name in LAYER_METRICS}
        run.final = {name: float(i) for name in FINAL_METRICS}
        runs.append(run)
    return runs
