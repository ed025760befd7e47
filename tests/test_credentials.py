"""Where a bucket's credentials go: a sweep submitted to a real `ray start --head` from a shell with its own
AWS settings runs on the credentials the head was started with; no secret travels through Ray, so none shows
in Ray's job list, in any file under the head's temp folder, in the bucket or in what the project prints."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from ray.job_submission import JobSubmissionClient

from sweep.store import ResultsStore

from .clusters import head_node
from .conftest import tiny_grid, write_spec
from .s3server import BUCKET
from .s3server import s3 as s3  # the fixture

pytestmark = pytest.mark.slow
KEY_ID, SECRET, TOKEN = (f"{kind}{uuid.uuid4().hex}" for kind in ("AKIA", "Secret", "Token"))  # here only


def test_a_job_runs_on_the_head_s_own_credentials_and_no_secret_travels(
    s3, ray_temp, tmp_path_factory, monkeypatch
):
    for name, value in (("AWS_ACCESS_KEY_ID", KEY_ID), ("AWS_SECRET_ACCESS_KEY", SECRET)):
        monkeypatch.setenv(name, value)  # the head's and the submitter's (moto takes any keys)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    spec = write_spec(
        tmp_path_factory.mktemp("spec") / "g.yaml",
        tiny_grid("s3-job", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0]}"),
    )
    with head_node(ray_temp, os.environ) as head:
        submit = [sys.executable, "-m", "sweep", "submit", spec, "--address", head["jobs"]]
        ran = subprocess.run(
            [*map(str, submit), "--results", f"s3://{BUCKET}/r", "--follow"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        listed = str(JobSubmissionClient(head["jobs"]).list_jobs())  # what `ray job list` prints
        assert ran.returncode == 0 and ran.stdout.strip().endswith("SUCCEEDED"), ran.stdout + ran.stderr
        assert "s3-job" in listed
    rows = ResultsStore(f"s3://{BUCKET}/r").rows("trials", "s3-job")
    assert len(rows) == 2 and all(row["status"] == "done" for row in rows)
    secrets = [value.encode() for value in (KEY_ID, SECRET, TOKEN)]
    seen = {"printed": (ran.stdout + ran.stderr + listed).encode()}
    seen |= {f"s3://{key}": s3.body(key) for key in s3.keys("")}
    seen |= {
        str(path): path.read_bytes()
        for path in ray_temp.rglob("*")
        if path.is_file() and not path.is_symlink()
    }
    assert not [where for where, data in seen.items() if any(secret in data for secret in secrets)]
