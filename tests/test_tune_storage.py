"""Tune's state in a bucket of its own (`ray.storage`) while the tables stay on local disk: that bucket
going away mid-sweep stops the sweep in one line that names it, and `sweep resume` finishes the sweep once
the bucket is back. (A module of its own, so that the suite's workers can run it beside
`test_object_store`.)"""

from __future__ import annotations

import pytest

from sweep.store import ResultsStore

from . import drivers
from .conftest import tiny_grid, write_spec
from .s3server import BUCKET
from .s3server import s3 as s3  # the fixture
from .test_object_store import env_of, run_driver

pytestmark = pytest.mark.slow


def test_a_ray_storage_bucket_away_mid_sweep_stops_it_in_one_line(s3, tmp_path):
    text = tiny_grid("apart", "{sparse_width: 16, ratios: [0.5], depths: [1], seeds: [0, 1, 2]}")
    text = text.replace("epochs: 1,", "epochs: 10,") + f"ray: {{storage: 's3://{BUCKET}/tune'}}\n"
    spec = write_spec(tmp_path / "g.yaml", text)
    results = tmp_path / "r"
    proc = drivers.start("run", spec, "--results", results, env=env_of(s3))
    drivers.wait_for(lambda: len(drivers.done_rows(results, "apart")) >= 2, proc, timeout=300)
    s3.stop()
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, output
    assert "Traceback" not in output and "Unhandled error" not in output, output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"sweep: error: sweep apart stopped: ray.storage s3://{BUCKET}/tune: "), output
    assert last.endswith(f"continue it with 'sweep resume apart --results {results}'"), output
    s3.start()  # back, with Tune's state

    resumed = run_driver(s3, "resume", "apart", "--results", results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = ResultsStore(results).rows("trials", "apart")
    assert len(rows) == len({r["trial_key"] for r in rows}) == 6
    assert all(r["status"] == "done" for r in rows), [(r["status"], r["error"]) for r in rows]
