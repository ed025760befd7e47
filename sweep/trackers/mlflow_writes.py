"""Carrying out an MLflow export's writes: each run's `log_batch` calls, in this process for a few runs and
in a few worker processes for many, since nearly all of an export's time is MLflow's own store (its ORM, on
one core per process) or the server's answers; and the one line an error of MLflow, its HTTP client, its
database or the OS becomes."""

from __future__ import annotations

import logging
import os
import pickle
import re
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from subprocess import PIPE, Popen

from sweep.errors import UserError, first_line

# A run's writes: its name, its id (None: create it with these tags), `log_batch` calls, a status to set.
Plan = tuple[str, str | None, dict, list, str | None]
MIN_SHARE = 100  # runs a worker process takes at least (one starts in about 3 s); fewer: written here
MAX_WORKERS = 4  # two at least, even on one core: a worker waiting for the store or server leaves it free
USER_ERROR = 2  # a worker's exit code when its last line of stderr is the user's one-line error
UNREACHABLE = {  # a clue in the HTTP client's error -> why
    "Connection refused": "connection refused: is the server up?",
    "NameResolutionError": "its host name does not resolve",
    "timed out": "no answer in time",
    "Max retries exceeded": "the connection failed",
}
QUIET = ("mlflow.store.db.utils", "alembic")  # their INFO lines when a new store's tables are made
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def masked(text: str) -> str:
    """A URI (or a message holding one) without the `user:password@` of any address in it."""
    return _CREDENTIALS.sub("***@", text)


@contextmanager
def writers(runs: int, env: dict[str, str]) -> Iterator[list[Popen]]:
    """Worker processes for an export of up to `runs` runs (none below 2 x MIN_SHARE), started at once so
    that they load MLflow while this process plans, with `env` as settings wherever the user's own are not
    set; any still running at the end are stopped."""
    count = min(MAX_WORKERS, max(2, os.cpu_count() or 1), runs // MIN_SHARE)
    count = count if count >= 2 else 0
    command = [sys.executable, "-m", __name__]  # a process of its own: no caller's main module to re-run
    started = [Popen(command, stdin=PIPE, stderr=PIPE, env=env | dict(os.environ)) for _ in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            for pipe in (worker.stdin, worker.stderr):
                pipe.close()  # type: ignore[union-attr]


def write_plans(started: list[Popen], uri: str, experiment_id: str, plans: list[Plan], where: str) -> None:
    """Carry out the plans against the store or server at `uri`: spread over the started workers, MIN_SHARE
    runs each at least, or in this process when fewer. A value the store refuses is one line that names the
    trial."""
    count = min(len(started), len(plans) // MIN_SHARE)
    for i, worker in enumerate(started):  # a worker that gets None has nothing to do
        try:
            with worker.stdin:  # type: ignore[union-attr]
                share = (uri, experiment_id, plans[i::count], where) if i < count else None
                pickle.dump(share, worker.stdin)
        except BrokenPipeError:  # it ended before it read: its exit code and its lines say why, below
            pass
    if not count:
        _write(uri, experiment_id, plans, where)
    ended = [(worker.stderr.read(), worker.wait()) for worker in started]  # type: ignore[union-attr]
    for err, code in ((err, code) for err, code in ended if code):
        lines = err.decode(errors="replace").strip().splitlines() or ["(no output)"]
        if code == USER_ERROR:
            raise UserError(lines[-1])
        raise RuntimeError(f"an MLflow export worker failed (exit {code}): " + "\n".join(lines[-20:]))


def _write(uri: str, experiment_id: str, plans: list[Plan], where: str) -> None:
    """A few requests a run, whatever its number of metrics."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client, now = MlflowClient(tracking_uri=uri), int(time.time() * 1000)
    for name, run_id, create_tags, calls, status in plans:
        try:
            if run_id is None:
                run_id = client.create_run(experiment_id, tags=create_tags, run_name=name).info.run_id
            for metrics, params, tags in calls:
                entities = [Metric(key, value, now, step) for key, value, step in metrics]
                params, tags = [Param(*p) for p in params], [RunTag(*t) for t in tags]
                client.log_batch(run_id, entities, params, tags, synchronous=True)
            if status:
                client.set_terminated(run_id, status)
        except Exception as exc:
            if (why := reason(exc, where)) is None:
                raise
            raise UserError(why if "not reachable" in why else f"trial {name}: {why}") from None


@contextmanager
def settings(env: dict[str, str]) -> Iterator[None]:
    """MLflow's HTTP settings for a while (the user's own, when set, win; worker processes inherit them),
    with no INFO lines when a new store's tables are made."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update({name: value for name, value in env.items() if saved[name] is None})
    loggers = {logger: logger.level for logger in map(logging.getLogger, QUIET)}
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name in (name for name, value in saved.items() if value is None):
            os.environ.pop(name, None)
        for logger, level in loggers.items():
            logger.setLevel(level)


def reason(exc: Exception, where: str) -> str | None:
    """The line for an error of MLflow, its HTTP client or its database, or of the OS, with no credentials
    in it; None for any other (a bug here)."""
    import requests
    from mlflow.exceptions import MlflowException

    known: tuple[type, ...] = (MlflowException, requests.RequestException, sqlite3.Error, OSError)
    try:
        import sqlalchemy  # not in mlflow-skinny

        known += (sqlalchemy.exc.SQLAlchemyError,)
    except ImportError:
        pass
    if not isinstance(exc, known):
        return None
    text = str(exc)
    for clue, why in UNREACHABLE.items():
        if clue in text:
            return f"MLflow at {where} is not reachable ({why})"
    return f"MLflow at {where}: {masked(first_line(exc))}"[:400]


if __name__ == "__main__":  # a worker of `write_plans`: its share of the plans comes on stdin
    from mlflow.tracking import MlflowClient  # noqa: F401  (loaded while the exporter plans)

    if (share := pickle.load(sys.stdin.buffer)) is not None:
        try:
            _write(*share)
        except UserError as refused:
            print(refused, file=sys.stderr)
            sys.exit(USER_ERROR)
