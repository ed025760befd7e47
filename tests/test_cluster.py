"""A real `ray start --head` (through cluster/local_head.sh, with its own temp dir and ports): a sweep that
joins it, a sweep submitted to it as a Ray job, a busy port refused and a second head beside it. Only the head
nodes these tests start are stopped, by their process groups. Also: what a job uploads, and the recipes."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from sweep.engine.submit import runtime_env, upload_files
from sweep.spec import parse_spec
from sweep.store import ResultsStore

from .clusters import free_ports, head_node, short_temp
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


@pytest.fixture(scope="module")
def head():
    with short_temp() as temp, head_node(temp, os.environ) as node:
        yield node


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


FACTORY = """
from torch import nn


def build(input_shape, num_classes, hidden=8):
    return nn.Sequential(
        nn.Conv2d(input_shape[0], hidden, 3, padding=1, groups=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(hidden * 4, num_classes),
    )
"""
FACTORY_GRID = """
name: own-model
kind: grid
dataset: {name: synthetic, subset: 256}
model: {factory: "lab_models:build", kwargs: {hidden: 12}, densities: 0.25, dense_layers: ["4"]}
train: {epochs: 2, batch_size: 64}
egf: {samples: 64}
grid: {seeds: [0], axes: {sparsity.method: [random, snip]}}
"""


def test_the_users_own_model_runs_on_a_head_node(head, tmp_path):
    """A factory module in the folder the user runs `sweep` from imports on the head's workers too."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "lab_models.py").write_text(FACTORY)
    spec = write_spec(project / "g.yaml", FACTORY_GRID)
    result = subprocess.run(
        [sys.executable, "-m", "sweep", "run", "g.yaml", "--results", "r", "--address", head["address"]],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    store = ResultsStore(project / "r")
    trials = store.rows("trials", "own-model")
    assert sorted(t["method"] for t in trials) == ["random", "snip"]
    assert all(t["status"] == "done" and t["model_name"] == "lab_models:build" for t in trials)
    assert all(t["model_kwargs"] == '{"hidden": 12}' and t["family"] == "factory" for t in trials)
    layers = store.rows("layers", "own-model")
    assert {(row["module"], row["density"]) for row in layers} == {("0", 0.25), ("4", 1.0)}
    assert spec.exists()


def test_a_trial_waits_a_bounded_time_for_a_gpu_the_cluster_lacks(head, tmp_path):
    spec = write_spec(tmp_path / "g.yaml", GRID.format(name="needs-gpu"))
    settings = ("--set", "resources.gpu=1", "--set", "resources.wait_s=3")
    result = sweep_cli("run", spec, "--results", tmp_path / "r", "--address", head["address"], *settings)
    assert result.returncode == 2, result.stdout + result.stderr
    waits = "waiting for a node with 1 CPU, 1 GPU per trial (its nodes have at most 2 CPU, 0 GPU)"
    assert waits in result.stdout
    assert "an autoscaler may add one; giving up after resources.wait_s=3 s" in result.stdout
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert "no node offered 1 CPU, 1 GPU per trial within resources.wait_s=3 s" in line
    assert "sweep resume needs-gpu" in line
    assert stored_trials(tmp_path / "r", "needs-gpu") == []  # nothing trained, nothing recorded
    state = ResultsStore(tmp_path / "r").sweep_state("needs-gpu")
    assert state is not None and state.stage == "main"  # resumable, not marked done


def stored_trials(root: Path, name: str) -> list[dict]:
    store = ResultsStore(root)
    return store.rows("trials", name) if store.exists() else []


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


def head_script(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_a_busy_port_is_refused_in_one_line(head, tmp_path):
    """The port of a running head: a second head there would crash, and the first would answer for it."""
    port = head["address"].rsplit(":", 1)[1]
    result = head_script("start", "--port", port, "--temp-dir", tmp_path / "second", "--num-cpus", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"local_head.sh: port {port} on this machine is in use (another Ray head?); choose free ports "
        "with --port N --dashboard-port N, or --port auto"
    )
    assert "started" not in result.stdout and not (tmp_path / "second" / "head.pgid").exists()
    with socket.socket() as other:  # anything else that listens there is refused the same way
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        result = head_script("start", "--port", str(taken), "--temp-dir", tmp_path / "third")
    assert result.returncode == 2 and f"port {taken} on this machine is in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_auto_ports_are_free_and_below_the_ephemeral_range():
    """`--port auto`'s ports: never ones the kernel hands to outgoing connections (a Ray client could take one
    between the pick and the head's bind), nor Ray's worker ports."""
    ports = free_ports(4)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert len(set(ports)) == 4 and all(20000 <= port < low for port in ports), (ports, low)
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_second_head_chooses_its_ports_and_is_found_by_its_temp_dir(head, ray_temp):
    start = head_script("start", "--port", "auto", "--temp-dir", ray_temp, "--num-cpus", "1")
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        recorded = dict(line.split("=") for line in (ray_temp / "head.ports").read_text().split())
        port, dashboard = recorded["port"], recorded["dashboard_port"]
        assert f"127.0.0.1:{port}" != head["address"] and f":{dashboard}" not in head["jobs"]
        assert f"--address 127.0.0.1:{port}" in start.stdout
        status = head_script("status", "--temp-dir", ray_temp, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"address 127.0.0.1:{port}" in status.stdout and "Node status" in status.stdout
        first = head_script("status", "--temp-dir", head["temp"], timeout=60)
        assert first.returncode == 0 and f"address {head['address']}" in first.stdout
    finally:
        stop = head_script("stop", "--temp-dir", ray_temp, timeout=120)
    assert stop.returncode == 0 and "stopped the head node" in stop.stdout, stop.stdout + stop.stderr
    pgid = int(start.stdout.split("process group ")[1].split(",")[0])
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert head_script("status", "--temp-dir", ray_temp, timeout=60).returncode == 1
    first_lives_on = head_script("status", "--temp-dir", head["temp"], timeout=60)
    assert first_lives_on.returncode == 0


def git_project(root: Path, tracked: dict[str, str], untracked: dict[str, str]) -> Path:
    for name, text in {**tracked, **untracked}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "--", *tracked], check=True)
    return root


def test_submit_uploads_only_the_files_git_tracks(tmp_path):
    tracked = {
        "pyproject.toml": "[project]\nname = 'x'\n",
        "sweep/__init__.py": "",
        "search_spaces/q.yaml": "name: q\n",
        "results/reproduction/FINDINGS.md": "# findings\n",
    }
    secrets = {
        ".env": "TOKEN=secret\n",
        "secrets.yaml": "password: hunter2\n",
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "results/trials/sweep=q/part-k.parquet": "rows",
        "notes.txt": "scratch",
    }
    project = git_project(tmp_path / "project", tracked, secrets)
    assert sorted(upload_files(project)) == ["pyproject.toml", "search_spaces/q.yaml", "sweep/__init__.py"]
    (project / "sweep" / "__init__.py").unlink()  # tracked, but deleted here: nothing to send
    assert "sweep/__init__.py" not in upload_files(project)
    plain = tmp_path / "plain"  # not a git checkout: the installed package only
    plain.mkdir()
    (plain / "pyproject.toml").write_text("[project]\n")
    assert upload_files(plain) is None


def test_a_jobs_working_dir_holds_the_tracked_project(tmp_path):
    spec = parse_spec({"name": "staged"})
    env = runtime_env(spec, tmp_path)
    assert env["working_dir"] == str(tmp_path)
    staged = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert staged == sorted(t for t in tracked if not t.startswith("results/") and (ROOT / t).is_file())
    assert {"pyproject.toml", "sweep/engine/submit.py", "search_spaces/quickstart.yaml"} <= set(staged)
    assert not any(p.startswith((".venv", ".git/", "results/")) for p in staged)
    assert "RAY_AUTH_MODE" not in env["env_vars"]  # the job keeps the cluster's own mode
    assert parse_spec(yaml.safe_load(env["env_vars"]["SPARSE_SWEEP_SPEC"])).name == "staged"


def having(node: object, key: str) -> list[dict]:
    """Every mapping with `key` anywhere in a manifest."""
    if isinstance(node, dict):
        found = [node] if key in node else []
        return found + [c for value in node.values() for c in having(value, key)]
    if isinstance(node, list):
        return [c for value in node for c in having(value, key)]
    return []


def containers(node: object) -> list[dict]:
    """Every container (a mapping with an image) anywhere in a manifest."""
    return having(node, "image")


def pip_requirements(command: str) -> set[str]:
    """The requirements a shell command's `pip install` names (its options left out)."""
    words = shlex.split(command.split("&&")[0])
    assert words[:2] == ["pip", "install"], command
    assert words[words.index("-c") + 1] == "/etc/sparse-sweep/requirements.lock", command  # tested versions
    return {w for i, w in enumerate(words[2:], 2) if not w.startswith("-") and words[i - 1] != "-c"}


def test_recipes_install_the_pinned_dependencies_with_python_3_11():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {re.sub(r"\s", "", d) for d in project["dependencies"] + project["optional-dependencies"]["s3"]}
    ray_version = re.search(r"ray\[[^]]*\]>=([\d.]+),", " ".join(pins)).group(1)
    assert project["requires-python"] == ">=3.11"
    for name in ("raycluster.yaml", "rayjob.yaml"):
        manifest = yaml.safe_load((ROOT / "cluster" / "kuberay" / name).read_text())
        found = containers(manifest)
        assert len(found) == 2, name  # the head and the GPU workers
        lock = {"name": "lock", "configMap": {"name": "sparse-sweep-lock"}}
        assert all(lock in pod["volumes"] for pod in having(manifest, "containers")), name
        for container in found:
            assert re.fullmatch(rf"rayproject/ray:{ray_version}\.0-py311(-gpu)?", container["image"])
            assert pip_requirements(container["args"][0]) == pins, (name, container["name"])
            assert container["args"][0].endswith('exec /bin/bash -c "$KUBERAY_GEN_RAY_START_CMD"')
            mount = {"name": "lock", "mountPath": "/etc/sparse-sweep", "readOnly": True}
            assert mount in container["volumeMounts"]
    aws = yaml.safe_load((ROOT / "cluster" / "aws-gpu.yaml").read_text())
    setup = " ; ".join(aws["setup_commands"])
    assert "python3.11 -m venv .venv" in setup  # pyproject's pins at the lock's versions, boto3 for a bucket
    assert ".venv/bin/pip install -q -c requirements.lock -e '.[s3]'" in setup
    assert {".env", "secrets.yaml", ".ssh"} <= set(aws["rsync_exclude"])


def test_dashboards_keep_off_public_interfaces():
    aws = yaml.safe_load((ROOT / "cluster" / "aws-gpu.yaml").read_text())
    head = " ".join(aws["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    cluster = yaml.safe_load((ROOT / "cluster" / "kuberay" / "raycluster.yaml").read_text())
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    job = yaml.safe_load((ROOT / "cluster" / "kuberay" / "rayjob.yaml").read_text())
    # The operator submits the job through the dashboard, so it listens on the pod's address, with a token.
    assert job["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    assert "RAY_AUTH_MODE" not in job["spec"]["runtimeEnvYAML"]
