"""`sweep submit`: run a sweep as a Ray job on a remote cluster through the Job Submission SDK.

Only what the job needs travels as its working dir: the files git tracks in the project (the package, the
specs, pyproject.toml; never `.env`, keys or anything else git does not know), copied into a temporary folder
for the upload. Outside a git checkout only the installed package travels. The resolved spec (after `--set`)
travels in an environment variable, so the job runs exactly what was asked.
The job's driver runs `python -m sweep run` on the head node and joins the cluster with `--address auto`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweep.echo import Echo
from sweep.engine.session import job_environment
from sweep.errors import UserError, first_line
from sweep.ray_env import RAY_ENV
from sweep.spec import SweepSpec, spec_to_yaml
from sweep.store.location import settled_spec, shown

SPEC_ENV = "SPARSE_SWEEP_SPEC"
LEFT_BEHIND = ("results/",)  # tracked, but a job writes results and never reads these


@dataclass(frozen=True)
class JobOptions:
    """`follow`: stream the job's output until it ends; `forward_credentials`: send this process's AWS
    settings with the job, instead of the nodes reaching the store with their own."""

    follow: bool = False
    forward_credentials: bool = False


def submit_sweep(
    spec: SweepSpec, address: str, results: str, options: JobOptions = JobOptions(), echo: Echo = print
) -> tuple[str, str | None]:
    """Submit the sweep; return the job id and, when following, its final status. The cluster's nodes reach
    the store with their own credentials unless `options.forward_credentials` (`engine/session.py`)."""
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
        raise UserError(f"--address {address}: cannot reach the Ray job server ({first_line(exc)})") from None
    entrypoint = " ".join(
        [
            "python",
            "-m",
            "sweep",
            "run",
            "--spec-env",
            SPEC_ENV,
            "--results",
            shown(results),  # with its query's endpoint, scheme and region, never a credential
            "--address",
            "auto",
        ]
    )
    with tempfile.TemporaryDirectory(prefix="sparse-sweep-job-") as staging:
        job_id = client.submit_job(  # the working dir is zipped and uploaded here, before the folder goes
            entrypoint=entrypoint,
            runtime_env=runtime_env(spec, Path(staging), options.forward_credentials),
            metadata={"sweep": spec.name, "kind": spec.kind},
        )
    echo(f"submitted sweep {spec.name} as job {job_id} to {address}")
    if not options.follow:
        echo(f"follow it with: ray job logs {job_id} --address {shlex.quote(address)} --follow")
        return job_id, None
    asyncio.run(_stream(client, job_id, echo))
    status = str(client.get_job_status(job_id).value)
    echo(f"job {job_id}: {status}")
    return job_id, status


def runtime_env(spec: SweepSpec, staging: Path, forward_credentials: bool = False) -> dict:
    """The job's runtime env: the project's tracked files, copied into `staging`, as its working dir when this
    is a git checkout, else the installed package. The job keeps the cluster's own RAY_AUTH_MODE, and its
    AWS settings unless `forward_credentials`."""
    package = Path(__file__).resolve().parents[1]
    env_vars = {
        **job_environment(forward_credentials),
        SPEC_ENV: spec_to_yaml(settled_spec(spec)),
        "RAY_USAGE_STATS_ENABLED": RAY_ENV["RAY_USAGE_STATS_ENABLED"],
    }
    files = upload_files(package.parent)
    if files is None:
        return {"py_modules": [str(package)], "env_vars": env_vars}
    for relative in files:
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package.parent / relative, target)
    return {"working_dir": str(staging), "env_vars": env_vars}


def upload_files(project: Path) -> list[str] | None:
    """The files a job gets from `project`: those git tracks there (and that exist), less `LEFT_BEHIND` and
    less a link that leads out of the checkout (it travels as its target's content); None when `project` is
    not a git checkout with a pyproject.toml (then only the installed package travels)."""
    if not (project / "pyproject.toml").is_file():
        return None
    try:
        listed = subprocess.run(
            ["git", "-C", str(project), "ls-files", "-z", "--cached", "--", "."],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):  # no git here, or not a checkout
        return None
    inside = project.resolve()
    files = [
        name
        for name in listed.decode().split("\0")
        if name
        and not name.startswith(LEFT_BEHIND)
        and (project / name).is_file()
        and (project / name).resolve().is_relative_to(inside)
    ]
    return files if "pyproject.toml" in files else None


async def _stream(client: object, job_id: str, echo: Callable[[str], None]) -> None:
    async for lines in client.tail_job_logs(job_id):
        text = lines.rstrip("\n")
        if text:
            echo(text)
