"""The commands' own checks, each a line before anything runs: what `sweep resume` says of a trial that
`sweep train` trained, an empty --results, a sweep name too long for a file name, a bucket that does not
exist, one driver per sweep for `sweep train` too, the files `sweep submit` uploads, and the Ray settings
that are the `sweep` command's alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sweep.engine.submit import upload_files
from sweep.ray_env import set_ray_environment
from sweep.store import ResultsStore
from sweep.store.lease import driver_lease

from .conftest import write_spec
from .s3server import s3 as s3  # the fixture
from .test_cluster import git_project


def one_trial(path: Path, name: str) -> Path:
    data = "dataset: {name: synthetic, subset: 300}\ntrain: {epochs: 1}\negf: {samples: 64}\n"
    return write_spec(path, f"name: {name}\n{data}")


def one_line(result) -> bool:
    return result.code == 2 and "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


def test_a_trial_sweep_train_trained_is_trained_again_with_sweep_train(cli, tmp_path):
    results = tmp_path / "r"
    spec = one_trial(tmp_path / "one.yaml", "alone")
    assert cli("train", spec, "--results", results).code == 0
    resumed = cli("resume", "alone", "--results", results)
    assert one_line(resumed), resumed.err
    assert f"'sweep train SPEC --force --results {results}'" in resumed.err, resumed.err
    assert "no sweep named" not in resumed.err
    (part,) = (results / "trials" / "sweep=alone").glob("part-*.parquet")
    part.write_bytes(b"not parquet")
    told = cli("status", "alone", "--results", results)
    assert one_line(told) and f"{part} is damaged" in told.err, told.err
    assert "'sweep train SPEC --force --results" in told.err and "sweep resume" not in told.err


def test_an_empty_results_is_one_line(cli, tmp_path):
    for command in (("status",), ("query", "SELECT 1"), ("train", one_trial(tmp_path / "one.yaml", "one"))):
        result = cli(*command, "--results", "")
        assert one_line(result) and "--results: empty" in result.err, result.err
        assert "training" not in result.out


def test_a_sweep_name_too_long_for_a_file_name_is_refused_before_training(cli, tmp_path):
    name = "n" * 300
    result = cli("train", one_trial(tmp_path / "long.yaml", name), "--results", tmp_path / "r")
    assert one_line(result) and "name:" in result.err and "at most 100 characters" in result.err, result.err
    assert "training" not in result.out and not (tmp_path / "r" / "trials").exists()
    status = cli("status", name, "--results", tmp_path / "r")
    assert one_line(status) and "at most 100 characters" in status.err, status.err


def test_a_missing_bucket_is_named(s3, cli):
    for command in (("status",), ("query", "SELECT 1"), ("compact",)):
        result = cli(*command, "--results", "s3://no-such-bucket/r")
        assert one_line(result) and "bucket no-such-bucket does not exist" in result.err, result.err
        assert "no results there yet" not in result.err


def test_sweep_train_takes_the_sweeps_lease(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSE_SWEEP_LEASE_TERM_S", "3")  # the holder renews often: seen alive at once
    results = tmp_path / "r"
    spec = one_trial(tmp_path / "one.yaml", "held")
    with driver_lease(ResultsStore(results), "held", "run"):  # another driver runs the sweep
        busy = cli("train", spec, "--results", results)
    assert one_line(busy) and "is being run by another driver" in busy.err, busy.err
    assert "training" not in busy.out and not (results / "trials").exists()


def test_submit_follows_no_tracked_symlink_out_of_the_checkout(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("password: hunter2\n")
    tracked = {"pyproject.toml": "[project]\nname = 'x'\n", "sweep/__init__.py": "", "notes.md": "# notes\n"}
    project = git_project(tmp_path / "project", tracked, {})
    os.symlink(outside, project / "linked-out.txt")
    os.symlink("../outside.txt", project / "relative-out.txt")
    os.symlink("notes.md", project / "linked-in.md")
    links = ["linked-out.txt", "relative-out.txt", "linked-in.md"]
    subprocess.run(["git", "-C", str(project), "add", "--", *links], check=True)
    assert sorted(upload_files(project)) == [
        "linked-in.md",
        "notes.md",
        "pyproject.toml",
        "sweep/__init__.py",
    ]


def test_only_the_sweep_command_hides_the_errors_tune_stopped_awaiting(cli, monkeypatch, tmp_path):
    """A program that imports the package keeps Ray's reports of errors no one awaited; the command, which
    reports each trial's error in its own line, prints no such traceback."""
    monkeypatch.delenv("RAY_IGNORE_UNHANDLED_ERRORS", raising=False)
    set_ray_environment()  # as `import sweep.engine` does
    assert "RAY_IGNORE_UNHANDLED_ERRORS" not in os.environ
    cli("status", "--results", tmp_path / "none")
    assert os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] == "1"
