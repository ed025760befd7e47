"""A sweep exported to TensorBoard and read back with TensorBoard's own reader: one run folder per trial, each
with one event stream holding its epochs, its layers' terms, its final metrics and its HParams row; the same
runs when exported again; a log folder that cannot be written, or TensorBoard missing, is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from sweep.cli import main
from sweep.errors import UserError
from sweep.store import ResultsStore
from sweep.trackers.runs import sweep_runs
from sweep.trackers.tensorboard_export import MARKER, default_logdir, export_tensorboard

from .conftest import TWO_TRIALS_EPOCHS, TWO_TRIALS_METHODS

EPOCHS, METHODS = TWO_TRIALS_EPOCHS, TWO_TRIALS_METHODS


@pytest.fixture
def results(two_trials) -> Path:
    return two_trials


def read_run(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def hparams(events: EventAccumulator) -> dict[str, HParamsPluginData]:
    return {tag: HParamsPluginData.FromString(c) for tag, c in events.PluginTagToContent("hparams").items()}


def counts(folder: Path) -> dict[str, dict[str, list[int]]]:
    """Each run's scalar tags -> their steps, as TensorBoard reads them."""
    found = {}
    for run in sorted(folder.iterdir()):
        events = read_run(run)
        found[run.name] = {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return found


def test_every_trial_is_a_run_with_its_scalars_and_its_hparams_row(results, tmp_path):
    lines = []
    runs = sweep_runs(ResultsStore(results), "tb")
    folder = export_tensorboard(runs, "tb", tmp_path / "tb-logs", lines.append)
    assert folder == tmp_path / "tb-logs" / "tb" and lines == []  # the caller says where they went
    trials = {row["trial_key"]: row for row in ResultsStore(results).rows("trials", "tb")}
    assert {run.name for run in folder.iterdir()} == set(trials)
    methods = set()
    for key, trial in trials.items():
        assert len(list((folder / key).glob("events.out.tfevents.*"))) == 1
        events = read_run(folder / key)
        assert [e.step for e in events.Scalars("test_acc")] == list(range(EPOCHS + 1))
        layer_tags = [tag for tag in events.Tags()["scalars"] if tag.endswith("/g_masked_l2")]
        assert layer_tags and all(tag.startswith("layer/") for tag in layer_tags), events.Tags()["scalars"]
        assert [e.step for e in events.Scalars(layer_tags[0])] == list(range(EPOCHS + 1))
        (final,) = events.Scalars("final/test_acc")
        assert final.step == EPOCHS and final.value == pytest.approx(trial["test_acc"])

        plugin = hparams(events)
        start = plugin[metadata.SESSION_START_INFO_TAG].session_start_info.hparams
        methods.add(start["sparsity.method"].string_value)
        assert start["train.lr"].number_value == pytest.approx(0.1) and "trial_key" not in start
        assert start["model.batchnorm"].WhichOneof("kind") == "bool_value"
        end = plugin[metadata.SESSION_END_INFO_TAG].session_end_info
        assert end.status == api_pb2.STATUS_SUCCESS
        experiment = plugin[metadata.EXPERIMENT_TAG].experiment
        columns = {info.name: info for info in experiment.hparam_infos}
        assert set(columns["sparsity.method"].domain_discrete) == set(METHODS)
        assert columns["sparsity.method"].differs and not columns["train.lr"].differs
        assert "final/test_acc" in {info.name.tag for info in experiment.metric_infos}
    assert methods == set(METHODS)


def test_exporting_again_gives_the_same_runs_each_step_once(results, tmp_path):
    logdir = tmp_path / "logs"
    runs = sweep_runs(ResultsStore(results), "tb")
    folder = export_tensorboard(runs, "tb", logdir, lambda _: None)
    first = counts(folder)
    stale, other = folder / "0123456789abcdef", folder / "notes"  # a trial gone from the tables; not ours
    for path in (stale, other):
        path.mkdir()
    (stale / MARKER).write_text("{}\n")
    lines = []
    export_tensorboard(runs, "tb", logdir, lines.append)
    assert not stale.exists() and other.is_dir()
    assert lines == [
        f"tensorboard: replaced the runs of 2 trials exported before to {folder}",
        f"tensorboard: removed the runs of 1 trials no longer in the tables: ['{stale.name}']",
    ]
    other.rmdir()
    assert counts(folder) == first
    assert all(steps == sorted(set(steps)) for tags in first.values() for steps in tags.values())
    assert all(len(list(run.glob("events.out.tfevents.*"))) == 1 for run in folder.iterdir())
    assert sorted(p.name for p in logdir.iterdir()) == ["tb"]  # no staging folder left


def test_the_default_log_folder_is_beside_local_results_and_here_for_a_bucket(tmp_path):
    assert default_logdir(str(tmp_path / "r")) == tmp_path / "r" / "tensorboard"
    assert default_logdir(f"file://{tmp_path}/r") == tmp_path / "r" / "tensorboard"
    assert default_logdir("s3://bucket/results") == Path("tensorboard")


@pytest.mark.parametrize("blocked", ["logs", "logs/tb", "logs/tb/TRIAL"])
def test_a_log_folder_that_cannot_be_written_is_one_line_naming_it(results, tmp_path, blocked):
    runs = sweep_runs(ResultsStore(results), "tb")
    blocked = blocked.replace("TRIAL", runs[-1].trial_key)  # a file where a run's folder should be
    (tmp_path / blocked).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / blocked).write_text("a file where the folder should be\n")
    with pytest.raises(UserError) as refused:
        export_tensorboard(runs, "tb", tmp_path / "logs", lambda _: None)
    (line,) = str(refused.value).splitlines()
    assert f"tensorboard log folder {tmp_path / 'logs'} cannot be written" in line, line
    assert str(tmp_path / blocked) in line, line


def test_without_tensorboard_the_line_names_the_extra(results, tmp_path, monkeypatch):
    runs = sweep_runs(ResultsStore(results), "tb")
    for name in [n for n in sys.modules if n.split(".")[0] == "tensorboard" or "utils.tensorboard" in n]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what `import tensorboard` meets uninstalled
    with pytest.raises(UserError, match=r"pip install 'sparse-sweep\[tensorboard\]'") as refused:
        export_tensorboard(runs, "tb", tmp_path / "logs", lambda _: None)
    assert len(str(refused.value).splitlines()) == 1 and not (tmp_path / "logs").exists()


def test_sweep_export_writes_the_runs_and_says_how_to_open_them(results, tmp_path, capsys):
    logdir = tmp_path / "tb-logs"
    code = main(["export", "tb", "--to", "tensorboard", "--uri", str(logdir), "--results", str(results)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"exported 2 trials of sweep tb to TensorBoard in {logdir / 'tb'}: tensorboard --logdir" in out
    assert len(counts(logdir / "tb")) == 2
    unknown = main(["export", "nothing", "--to", "tensorboard", "--results", str(results)])
    err = capsys.readouterr().err
    assert unknown == 2 and "no sweep named 'nothing'" in err and len(err.strip().splitlines()) == 1
