"""`sweep submit`: run a sweep as a Ray job on a remote cluster through the Job Submission SDK.

The project folder travels as the job's working dir (without `.venv`, `results/` and other local state); the
resolved spec (after `--set`) travels in an environment variable, so the job runs exactly what was asked.
The job's driver runs `python -m sweep run` on the head node and joins the cluster with `--address auto`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from collections.abc import Callable
from pathlib import Path

from sweep.errors import UserError
from sweep.spec import SweepSpec, spec_to_yaml

SPEC_ENV = "SPARSE_SWEEP_SPEC"
EXCLUDES = [
    ".venv",
    ".git",
    "results",
    "build",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.parquet",
    "*.pt",
    "*.ckpt",
]


def submit_sweep(
    spec: SweepSpec, address: str, results: str, *, follow: bool = False, echo: Callable[[str], None] = print
) -> tuple[str, str | None]:
    """Submit the sweep; return the job id and, when following, its final status."""
    from ray.job_submission import JobSubmissionClient

    for name in ("ray", "ray.dashboard.modules.job.sdk"):  # no INFO lines about the upload and the socket
        logging.getLogger(name).setLevel(logging.WARNING)

    if "://" not in results and not os.path.isabs(results):
        raise UserError(
            f"--results {results}: a job writes on the cluster, so give an absolute path on the head "
            "node (or on storage all nodes share) or a URI such as s3://bucket/results"
        )
    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(
            f"--address {address}: cannot reach the Ray job server ({_first_line(exc)})"
        ) from None
    entrypoint = " ".join(
        [
            "python",
            "-m",
            "sweep",
            "run",
            "--spec-env",
            SPEC_ENV,
            "--results",
            shlex.quote(results),
            "--address",
            "auto",
        ]
    )
    job_id = client.submit_job(
        entrypoint=entrypoint, runtime_env=runtime_env(spec), metadata={"sweep": spec.name, "kind": spec.kind}
    )
    echo(f"submitted sweep {spec.name} as job {job_id} to {address}")
    if not follow:
        echo(f"follow it with: ray job logs {job_id} --address {address} --follow")
        return job_id, None
    asyncio.run(_stream(client, job_id, echo))
    status = str(client.get_job_status(job_id).value)
    echo(f"job {job_id}: {status}")
    return job_id, status


def runtime_env(spec: SweepSpec) -> dict:
    """The project as working dir when this is a source checkout, else the installed package."""
    package = Path(__file__).resolve().parent
    env_vars = {SPEC_ENV: spec_to_yaml(spec), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    project = package.parent
    if (project / "pyproject.toml").is_file():
        return {"working_dir": str(project), "excludes": EXCLUDES, "env_vars": env_vars}
    return {"py_modules": [str(package)], "env_vars": env_vars}


async def _stream(client: object, job_id: str, echo: Callable[[str], None]) -> None:
    async for lines in client.tail_job_logs(job_id):
        text = lines.rstrip("\n")
        if text:
            echo(text)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
