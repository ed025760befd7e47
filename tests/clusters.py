"""A real multi-node Ray on this machine (`ray.cluster_utils.Cluster`): a head that runs only the driver, and
worker nodes the tests add and lose (a node's raylet killed by pid, as a spot node goes)."""

from __future__ import annotations

import os
import signal
import tempfile

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


def lose(node) -> None:
    """A lost node: its raylet killed, with no chance to say goodbye (its workers die with it)."""
    os.kill(node.all_processes["raylet"][0].process.pid, signal.SIGKILL)
