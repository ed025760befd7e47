"""Where results live, as a user writes it: an S3 URI's settings and credentials reach the store whole and are
never printed, and every command printed for the user to copy runs as printed in a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sweep.store import ResultsStore
from sweep.store.deadline import store_answers
from sweep.store.location import worker_environment

from .s3server import BUCKET
from .s3server import s3 as s3  # the fixture

SECRET = "Se+cret/Key%2B9"  # as written in a URI: '+' is a '+', '%2B' another one
DECODED = "Se+cret/Key+9"


def one_row(root: str) -> None:
    ResultsStore(root).write("epochs", "one", "t1", [{"trial_key": "t1", "epoch": 0}])


def test_a_plus_in_a_secret_of_the_query_stays_a_plus(s3, cli, monkeypatch):
    one_row(f"s3://{BUCKET}/r")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # this time the URI gives it
    uri = f"s3://{BUCKET}/r?access_key=A+K&secret_key={SECRET}"
    counted = cli("query", "SELECT count(*) AS n FROM epochs", "--results", uri)
    assert counted.code == 0 and " 1" in counted.out, counted.err
    passed = worker_environment()  # what this process and the Ray workers it starts sign requests with
    assert passed["AWS_SECRET_ACCESS_KEY"] == DECODED
    assert passed["AWS_ACCESS_KEY_ID"] == "A+K"


@pytest.mark.parametrize("setting", ["endpoint_override", "region", "secret_key", "scheme"])
def test_an_empty_setting_in_the_query_is_one_line_and_goes_nowhere(s3, cli, setting):
    result = cli("status", "--results", f"s3://{BUCKET}/r?{setting}=")
    assert result.code == 2 and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert f"{setting} is empty" in result.err and "amazonaws" not in result.err, result.err


def test_credentials_before_the_bucket_reach_the_store_and_are_never_printed(s3, cli, monkeypatch):
    one_row(f"s3://{BUCKET}/r")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # this time the URI gives it
    counted = cli("query", "SELECT count(*) AS n FROM epochs", "--results", f"s3://AKID:{SECRET}@{BUCKET}/r")
    assert counted.code == 0 and " 1" in counted.out, counted.err
    assert worker_environment()["AWS_SECRET_ACCESS_KEY"] == DECODED
    assert worker_environment()["AWS_ACCESS_KEY_ID"] == "AKID"
    empty = cli("status", "--results", f"s3://AKID:{SECRET}@{BUCKET}/nothing")
    assert empty.code == 2 and f"s3://{BUCKET}/nothing" in empty.err, empty.err
    no_secret = cli("status", "--results", f"s3://Se+cretAlone@{BUCKET}/r")  # a key alone, or a secret
    elsewhere = cli("status", "--results", f"gs://AKID:{SECRET}@{BUCKET}/r?x=1")
    for result in (no_secret, elsewhere):
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert "Traceback" not in result.err and "***" in result.err, result.err
    printed = counted.out + counted.err + empty.out + empty.err + no_secret.err + elsewhere.err
    assert SECRET not in printed and DECODED not in printed and "Se+cret" not in printed


def test_a_printed_resume_command_runs_as_printed_in_a_shell(cli, tmp_path):
    """A results folder whose path a shell would split: the hint quotes it, and runs as printed."""
    from sweep.engine.growth import first_state
    from sweep.spec import load_spec

    from .conftest import tiny_grid, write_spec

    results = tmp_path / "runs & tries" / "r"
    spec = load_spec(
        write_spec(tmp_path / "g.yaml", tiny_grid("quoted", "{sparse_width: 8, seeds: [0]}")), []
    )
    store = ResultsStore(results)
    state = first_state(spec, "run", store)
    state.stage = "done"
    store.save_sweep_state(state)  # a sweep that ended, whose one file is damaged now
    damaged = results / "trials" / "sweep=quoted" / "part-k.parquet"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not parquet")
    told = cli("status", "quoted", "--results", results)
    assert told.code == 2, told.err
    (command,) = re.findall(r"then '(sweep resume .*)' writes", told.err)
    damaged.rename(tmp_path / "part-k.parquet")  # as the line says: moved out of the results folder
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"  # `sweep` as installed
    ran = subprocess.run(
        command, shell=True, capture_output=True, text=True, env={**os.environ, "PATH": path}
    )
    assert ran.returncode == 0, command + ran.stdout + ran.stderr
    assert "sweep quoted is already complete" in ran.stdout


def test_a_store_answers_a_probe_until_it_is_away(s3, monkeypatch):
    """How a sweep tells a bucket gone away from an error of another kind, after a failed request."""
    store = ResultsStore(f"s3://{BUCKET}/r")
    assert store_answers(store.root, store.exists)
    s3.stop()
    monkeypatch.setenv("SPARSE_SWEEP_STORE_DEADLINE_S", "10")  # refused at once, or not answered in time
    assert not store_answers(store.root, store.exists)
