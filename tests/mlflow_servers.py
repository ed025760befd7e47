"""A real MLflow tracking server on 127.0.0.1 (`mlflow server` with a SQLite store, in a process group of its
own), and its runs read back through MLflow's REST API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

QUIET_MLFLOW = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_server(folder: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on the port, its store `folder/m.db` (kept when the server stops: a server started
    again on it finds its runs); the process and its URL once it answers."""
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{folder}/m.db", "--workers", "1"]
    command += ["--default-artifact-root", str(folder / "art")]
    settings = {"env": {**os.environ, **QUIET_MLFLOW}, "start_new_session": True, "stderr": subprocess.STDOUT}
    with open(folder / "server.log", "ab") as log:
        server = subprocess.Popen(command, stdout=log, **settings)
    deadline = time.monotonic() + 120
    while not healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            stop_group(server)
            raise AssertionError((folder / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    return server, url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def stop_group(server: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def rest(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def server_runs(url: str, sweep: str) -> tuple[dict, list[dict]]:
    """The sweep's parent run and its child runs, as the REST API gives them."""
    experiment = rest(url, f"experiments/get-by-name?experiment_name={sweep}")["experiment"]
    found = rest(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 1000})
    runs = found.get("runs", [])
    for run in runs:
        run["tags"] = {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}
        run["params"] = {param["key"]: param["value"] for param in run["data"].get("params", [])}
    (parent,) = [run for run in runs if run["tags"].get("sparse_sweep.sweep_run") == "true"]
    return parent, [run for run in runs if run is not parent]


def history(url: str, run_id: str, key: str) -> list[tuple[int, float]]:
    answer = rest(url, f"metrics/get-history?run_id={run_id}&metric_key={urllib.parse.quote(key)}")
    return sorted((metric["step"], metric["value"]) for metric in answer.get("metrics", []))
