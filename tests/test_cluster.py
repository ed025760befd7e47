"""A real `ray start --head` (through cluster/local_head.sh, with its own temp dir and ports): a sweep that
joins it, and a sweep submitted to it as a Ray job. Only this head node's processes are stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml

from sweep.store import ResultsStore

from .conftest import ROOT, write_spec

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "cluster" / "local_head.sh"
GRID = """
name: {name}
kind: sc_sdc
dataset: {{name: synthetic}}
train: {{optimizer: momentum, lr: 0.05, epochs: 2, batch_size: 64}}
egf: {{samples: 128}}
grid: {{sparse_width: 32, ratios: [0.5], depths: [1], seeds: [0]}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    temp = tmp_path_factory.mktemp("ray-head")
    port, dashboard, client, agent = (free_port() for _ in range(4))
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    start = subprocess.run(
        [
            str(SCRIPT),
            "start",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard),
            "--temp-dir",
            str(temp),
            "--num-cpus",
            "2",
            "--",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={agent}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield {"address": f"127.0.0.1:{port}", "jobs": f"http://127.0.0.1:{dashboard}", "temp": temp}
    finally:
        stop = subprocess.run(
            [str(SCRIPT), "stop", "--temp-dir", str(temp)], capture_output=True, text=True, timeout=120
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not (temp / "head.pgid").exists()


def sweep_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def test_sweep_joins_a_head_node(head, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID.format(name="on-head"))
    result = sweep_cli("run", spec, "--results", tmp_path / "r", "--address", head["address"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the Ray cluster at {head['address']}" in result.stdout
    trials = ResultsStore(tmp_path / "r").rows("trials", "on-head")
    assert sorted(t["role"] for t in trials) == ["dense", "sparse"]
    assert all(t["status"] == "done" for t in trials)


def test_submit_runs_a_sweep_as_a_job(head, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID.format(name="as-job"))
    result = sweep_cli("submit", spec, "--address", head["jobs"], "--results", tmp_path / "r", "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted sweep as-job as job" in result.stdout
    assert "leaderboard of as-job" in result.stdout  # the job's own log, streamed back
    assert result.stdout.strip().endswith("SUCCEEDED")
    trials = ResultsStore(tmp_path / "r").rows("trials", "as-job")
    assert len(trials) == 2 and all(t["status"] == "done" for t in trials)


def test_submit_needs_an_absolute_results_folder(cli, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID.format(name="x"))
    result = cli("submit", spec, "--address", "http://127.0.0.1:1", "--results", "relative/results")
    assert result.code == 2 and "give an absolute path on the head node" in result.err


def test_cluster_recipes_parse():
    for path in sorted((ROOT / "cluster").rglob("*.yaml")):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert documents, path
