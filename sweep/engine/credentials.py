"""Which of this process's AWS settings travel to a cluster's Ray processes: by default no credential.

A cluster's nodes reach an S3 store with their own credentials and settings, as Ray's own guidance for S3 has
it: an instance role, a service account (IRSA, workload identity), or the environment or the credentials file
the head and the workers were started with. So no secret goes through Ray, whose job list, job logs and
runtime-env logs show a job's environment to whoever can reach the dashboard or read the nodes' Ray temp
folders. Only the settings that are no secret (the endpoint, the region) travel, so that the workers write
where the driver does. `sweep submit --forward-credentials` is the explicit exception: it sends this shell's
AWS variables, credentials included, as the job's environment. A cluster whose workers cannot write the
results store fails in one line, before the first trial (`check_workers_reach`).
"""

from __future__ import annotations

import json
import os

import ray
import ray.job_config

from sweep.errors import ResultsError
from sweep.store.location import is_uri, worker_environment

IN_A_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # the job's config, which Ray gives a job's driver
PUBLIC = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")
SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN")


def job_environment(forward: bool) -> dict[str, str]:
    """The AWS variables a submitted job carries in its runtime env: this process's only when `forward`."""
    return worker_environment() if forward else {}


def store_settings() -> dict[str, str]:
    """This process's AWS settings that are no secret (which endpoint, which region), for a cluster's workers,
    so that they write where this driver does; less those a job's runtime env sets already (Ray refuses a
    driver's runtime env that sets a variable its job's sets)."""
    settings = {name: os.environ[name] for name in PUBLIC if name in os.environ}
    if IN_A_JOB in os.environ:
        job = ray.job_config.JobConfig.from_json(json.loads(os.environ[IN_A_JOB]))
        settings = {
            name: value for name, value in settings.items() if name not in job.runtime_env.get("env_vars", {})
        }
    return settings


def keep_credentials_home() -> None:
    """Stop Tune from copying this process's AWS credentials into every trial actor's runtime env, where Ray
    logs them (runtime_env_agent.log) and keeps them in its records: the workers have their own (an embedded
    Ray's inherit this process's environment)."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - set(SECRETS)


def check_workers_reach(root: str) -> None:
    """On a cluster: a worker writes and deletes a probe in the results store, with the credentials its node
    has; one that cannot is one error line, before any trial."""
    if is_uri(root):
        reason = ray.get(_probe.remote(root))
        if reason:
            raise ResultsError(
                f"a worker of the cluster: {reason}; the cluster's nodes use their own credentials: give the "
                "head and the workers some (an instance role, a service account, or AWS variables where 'ray "
                "start' runs), or submit with --forward-credentials"
            )


@ray.remote(num_cpus=0, max_retries=0)
def _probe(root: str) -> str | None:
    from sweep.store import ResultsStore

    try:
        ResultsStore(root).check_writable()
    except ResultsError as exc:
        return str(exc)
    return None
