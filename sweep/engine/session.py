"""Ray sessions: join a cluster or start an embedded Ray, check what it offers, and keep Tune quiet.

Credentials: which of this process's AWS settings travel to a cluster's Ray processes. By default, none
that is a secret.

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

import contextlib
import json
import logging
import os
import re
import signal
import socket
import warnings
from collections.abc import Iterator, Mapping
from urllib.parse import urlparse

import ray
import ray.job_config

from sweep.echo import Echo
from sweep.errors import ResultsError, UserError, first_line
from sweep.spec import SweepSpec
from sweep.store.location import is_uri, worker_environment


def start_embedded_ray() -> None:
    """Start the local Ray a sweep runs on when given no address: no dashboard, quiet, and no idle workers for
    its first driver. A sweep's trials run in Tune's actors, which carry a runtime env of their own and so
    never take a worker started without it; those processes (one per core) would only slow its start."""
    ray.init(
        address="local",
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _system_config={"prestart_worker_first_driver": False},
    )


@contextlib.contextmanager
def ray_session(
    address: str | None, spec: SweepSpec, echo: Echo, results: str | None = None
) -> Iterator[None]:
    """Join the cluster at `address`, or start an embedded local Ray; leave as we found it (a Ray this
    process started before, the caller's own, is used as it is and stays up). No credential of this process
    travels to a cluster (below): its workers must reach `results` with their own,
    which is checked before any trial."""
    keep_credentials_home()
    if ray.is_initialized():
        own = ray.get_runtime_context().gcs_address
        if address and address not in ("auto", own):
            _check_reachable(address)
            raise UserError(
                f"ray.address {address}: this process is connected to the Ray at {own} already; "
                "run the sweep from a process of its own, or without an address"
            )
        _describe(spec, "the Ray this process had started", echo)
        yield
        return
    if address:
        _check_reachable(address)
        runtime_env: dict = {"env_vars": store_settings()}  # where the workers find the store; no secret
        if address.startswith("ray://"):
            runtime_env["py_modules"] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        try:
            ray.init(
                address=address, log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"ray.address {address}: cannot connect ({_masked(exc)})") from None
        where = f"the Ray cluster at {address}"
    else:
        start_embedded_ray()
        where = "an embedded local Ray"
    try:
        _check_resources(spec, _describe(spec, where, echo), autoscaling=bool(address))
        if address and results:
            check_workers_reach(results)
        yield
    finally:
        ray.shutdown()


def _describe(spec: SweepSpec, where: str, echo: Echo) -> Mapping[str, float]:
    """The line that says where the sweep runs and what that Ray offers; its resources."""
    resources = ray.cluster_resources()
    echo(
        f"sweep {spec.name} ({spec.kind}) on {where}: {resources.get('CPU', 0):g} CPUs, "
        f"{resources.get('GPU', 0):g} GPUs; {spec.resources.cpu:g} CPU and {spec.resources.gpu:g} GPU "
        "per trial"
    )
    return resources


def _masked(exc: Exception) -> str:
    """An error's first line without the runtime envs Ray quotes in it (they may hold a job's environment)."""
    return re.sub(r"\{.*\}", "{...}", first_line(exc))


def _check_resources(spec: SweepSpec, resources: Mapping[str, float], autoscaling: bool) -> None:
    for name, asked in (("cpu", spec.resources.cpu), ("gpu", spec.resources.gpu)):
        have = resources.get(name.upper(), 0.0)
        if asked > have and not autoscaling:
            raise UserError(
                f"resources.{name}: {asked:g} per trial, but this Ray has {have:g} "
                f"{name.upper()}s; lower it or run on a cluster that has them (--address)"
            )


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at the address."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise UserError(f"ray.address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        raise UserError(
            f"ray.address {address}: cannot reach {host}:{port} ({exc.strerror or exc})"
        ) from None


def trial_slots(spec: SweepSpec) -> int:
    """How many trials fit on the cluster at once (a searcher otherwise proposes one trial at a time)."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / spec.resources.cpu
    if spec.resources.gpu > 0:
        slots = min(slots, resources.get("GPU", 0.0) / spec.resources.gpu)
    return max(1, int(slots))


@contextlib.contextmanager
def quiet_tune() -> Iterator[None]:
    """Tune's own logging off: trial errors land in the tables and in our progress lines. Also Optuna's
    warning when a trial that continues from its checkpoint reports again the epochs after that checkpoint:
    the study keeps the first report of each step, and the values are the same. Ray's storage layer and its
    syncer log a traceback for each request a results store away fails; the sweep's own line says what
    happened."""
    names = ("ray.tune", "ray.train._internal.storage", "ray.train._internal.syncer")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"The reported value is ignored because this `step=")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def stop_tune_run() -> None:
    """Stop this process's Tune run as Ctrl-C does: Tune saves its state and `fit` returns, so the sweep can
    be resumed. Safe from any thread (Tune's handler of SIGUSR1 runs on the main thread)."""
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return  # no Tune run listens here: the sweep then fails at its end instead
    os.kill(os.getpid(), signal.SIGUSR1)


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
