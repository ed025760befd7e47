"""A real multi-node Ray on this machine (`ray.cluster_utils.Cluster`): a head that runs only the driver, and
worker nodes the tests add and lose (a node's raylet killed by pid, as a spot node goes). Also a real
`ray start --head` (cluster/local_head.sh) with its own temp dir and ports, stopped by its process group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the nodes and the drivers keep to 127.0.0.1


def start_cluster():
    """A head with no CPUs (trials go to worker nodes) that notices a lost node in about two seconds;
    the cluster and its temp folder, which the caller removes after `shutdown()`."""
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 bytes
    head = {
        "num_cpus": 0,
        "node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        "temp_dir": temp,
        "_system_config": {
            "health_check_initial_delay_ms": 0,
            "health_check_period_ms": 500,
            "health_check_failure_threshold": 4,
        },
    }
    return Cluster(initialize_head=True, head_node_args=head), temp


@contextlib.contextmanager
def short_temp() -> Iterator[Path]:
    """A Ray node's temp folder, removed at the end: under /tmp with a short name, since Ray's socket paths
    must fit in 107 bytes and pytest's own folders (one per worker when the suite runs in parallel) can be
    too long for that."""
    folder = Path(tempfile.mkdtemp(prefix="ray-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lose(node) -> None:
    """A lost node: its raylet killed, with no chance to say goodbye (its workers die with it)."""
    os.kill(node.all_processes["raylet"][0].process.pid, signal.SIGKILL)


def free_ports(count: int) -> list[int]:
    """Free ports as `local_head.sh --port auto` picks them (below the ephemeral range, so that no outgoing
    connection takes one before the head binds it)."""
    script = Path(__file__).resolve().parents[1] / "cluster" / "head_ports.py"
    picked = subprocess.run([sys.executable, str(script), "pick", str(count)], capture_output=True, text=True)
    return [int(port) for port in picked.stdout.split()]


@contextlib.contextmanager
def head_node(temp: Path, env: Mapping[str, str]) -> Iterator[dict]:
    """A head node with 2 CPUs started by cluster/local_head.sh with the environment `env` (the venv's bin
    first on PATH); its GCS address, job server and temp dir. Stopped, by its process group, at the end."""
    script = Path(__file__).resolve().parents[1] / "cluster" / "local_head.sh"
    port, dashboard, client, agent = free_ports(4)
    env = {**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    options = [
        "--port",
        str(port),
        "--dashboard-port",
        str(dashboard),
        "--temp-dir",
        str(temp),
        "--num-cpus",
        "2",
    ]
    ports = [f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}"]
    start = subprocess.run(
        [str(script), "start", *options, "--", *ports], capture_output=True, text=True, env=env, timeout=180
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield {"address": f"127.0.0.1:{port}", "jobs": f"http://127.0.0.1:{dashboard}", "temp": temp}
    finally:
        began = time.monotonic()
        stop = subprocess.run(
            [str(script), "stop", "--temp-dir", str(temp)], capture_output=True, text=True, timeout=120
        )
        took = time.monotonic() - began
        assert stop.returncode == 0, stop.stdout + stop.stderr
        # Ray's own order (the node's `ray start` first) takes seconds; TERM to the whole group at once would
        # leave its GCS up until the KILL 15 s later.
        assert took < 14, f"stopping the head took {took:.0f} s"
        assert not (temp / "head.pgid").exists()
