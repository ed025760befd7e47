"""A sweep's runs in MLflow, through an `MlflowClient` only: one experiment per sweep, named after it, with
one parent run for the sweep (tag `sparse_sweep.sweep_run`) and one child run per trial, named by its trial
key, holding its settings as params, its epochs as metrics at step = epoch (the layers' terms as
`layer/<module>/<metric>`), its final metrics as `final/<metric>` at its last step and its tags under
`sparse_sweep.`. Exporting again updates the same runs (found by their tags): a run gets the epochs after its
`sparse_sweep.last_step` tag, the params it lacks and the tags that changed, so no step is logged twice; a
param MLflow holds with another value (it never changes one) is one line, before anything is written. The
writes are `log_batch` calls of MLflow's largest sizes, and a new SQLite store is made in WAL mode."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sweep.errors import UserError
from sweep.trackers.mlflow_writes import Plan, masked, reason, settings, write_plans, writers

if TYPE_CHECKING:
    from sweep.trackers.runs import TrialRun

INSTALL = "pip install 'sparse-sweep[mlflow]'"
PREFIX = "sparse_sweep."
LAST_STEP, SWEEP_RUN = f"{PREFIX}last_step", f"{PREFIX}sweep_run"  # the last epoch a run holds in full
MAX_PARAM, CUT = 6000, "...[truncated]"  # MLflow's longest param value, and the mark of a cut one
MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 100, 100, 1000  # one `log_batch`: params, tags, all (metrics too)
PAGE = 1000
STATUS = {"done": "FINISHED", "stopped": "FINISHED", "replayed": "FINISHED"}
STATUS |= {"diverged": "FAILED", "error": "FAILED"}  # a running trial's run stays RUNNING
# A server that is away fails the first request at once; later ones get a short retry each.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
EXPORT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # no line per run: the export says where they are
}
Held = tuple[str, str, dict, dict, set]  # what MLflow holds of a run: its id, status, params, tags, metrics


def default_uri(results_root: str) -> str:
    """The tracking store when no URI is given: SQLite `mlflow.db` beside a local results folder, or in this
    folder when the results are in a bucket."""
    from sweep.store.location import local_folder

    local = local_folder(results_root)
    folder = local.resolve().parent if local else Path.cwd()
    return f"sqlite:///{folder.resolve() / 'mlflow.db'}"


def export_mlflow(
    runs: Sequence[TrialRun],
    sweep: str,
    uri: str | None = None,
    echo: Callable[[str], object] = print,
    sweep_ended: bool = True,
) -> str:
    """Export every run of the sweep to the MLflow tracking store or server at `uri` (None: `mlflow.db` in
    this folder) and return where to view them; the sweep's parent run ends unless `sweep_ended` is off (a
    live sweep's). An unreachable server, a param MLflow holds with another value, or MLflow not installed
    is one line."""
    try:
        from mlflow.tracking import MlflowClient  # noqa: F401  (MLflow is there: else one line)
    except ImportError:
        raise UserError(f"exporting to MLflow needs the mlflow package: {INSTALL}") from None
    uri = uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    where, began = masked(uri), time.monotonic()
    try:
        with writers(len(runs), EXPORT_ENV) as workers:
            with settings(PROBE_ENV):
                client = open_store(uri)
                experiment_id = _experiment(client, sweep, where)
            with settings(EXPORT_ENV):
                held = _held_runs(client, experiment_id, sweep)
                if (parent := held.get("")) is None:
                    tags = {f"{PREFIX}sweep": sweep, SWEEP_RUN: "true"}
                    made = client.create_run(experiment_id, tags=tags, run_name=sweep)
                    parent = (made.info.run_id, "RUNNING")
                plans = [plan for run in runs if (plan := _plan(run, held.get(run.trial_key), parent[0]))]
                write_plans(workers, uri, experiment_id, plans, where)
                if sweep_ended and parent[1] != "FINISHED":
                    client.set_terminated(parent[0], "FINISHED")
                elif not sweep_ended and parent[1] != "RUNNING":  # a sweep resumed or grown: running again
                    client.update_run(parent[0], status="RUNNING")
    except Exception as exc:  # MLflow's, requests', SQLAlchemy's and the OS's errors alike
        if isinstance(exc, UserError) or (why := reason(exc, where)) is None:
            raise
        raise UserError(why) from None
    new = sum(plan[1] is None for plan in plans)
    done = f"{new} new, {len(plans) - new} updated, {len(runs) - len(plans)} unchanged"
    echo(f"mlflow: {len(runs)} runs of sweep {sweep} at {where} ({done}, {time.monotonic() - began:.1f}s)")
    view = f"mlflow ui --backend-store-uri {where}"
    if uri.startswith(("http://", "https://")):
        view = f"{where.rstrip('/')}/#/experiments/{experiment_id}"
    return view


def open_store(uri: str) -> Any:
    """An `MlflowClient` of the store or server at `uri` (a new SQLite store made in WAL mode, its tables
    made); MLflow keeps one store per URI in the process, so a later client finds it made."""
    from mlflow.tracking import MlflowClient

    _new_sqlite_in_wal_mode(uri)
    return MlflowClient(tracking_uri=uri)


def _experiment(client: Any, sweep: str, where: str) -> str:
    """The sweep's experiment, made when missing. The first request: a server that is away fails here."""
    found = client.get_experiment_by_name(sweep)
    if found is None:
        return client.create_experiment(sweep, tags={f"{PREFIX}sweep": sweep})
    if found.lifecycle_stage != "active":
        raise UserError(
            f"MLflow experiment {sweep} at {where} is deleted: restore it "
            f"(mlflow experiments restore -x {found.experiment_id}) or remove it for good (mlflow gc)"
        )
    return found.experiment_id


def _held_runs(client: Any, experiment_id: str, sweep: str) -> dict[str, Held]:
    """The sweep's runs MLflow holds, by trial key ("" for the parent run), every page of them; the oldest
    where two runs claim one key."""
    held: dict[str, Held] = {}
    query = {"filter_string": f"tags.`{PREFIX}sweep` = '{sweep}'", "max_results": PAGE}
    query["order_by"], token = ["attributes.start_time ASC"], None
    while True:
        page = client.search_runs([experiment_id], page_token=token, **query)
        for found in page:
            info, data = found.info, found.data
            key = "" if data.tags.get(SWEEP_RUN) == "true" else data.tags.get(f"{PREFIX}trial_key")
            if key is not None and key not in held:
                held[key] = (info.run_id, info.status, data.params, data.tags, set(data.metrics))
        if not (token := page.token):
            return held


def _plan(run: TrialRun, held: Held | None, parent_id: str) -> Plan | None:
    """What the run lacks in MLflow (None: nothing). A param MLflow holds with another value is one line."""
    keep = MAX_PARAM - len(CUT)
    params = {name: v if len(v) <= MAX_PARAM else v[:keep] + CUT for name, v in run.params.items()}
    tags = {f"{PREFIX}{name}": value for name, value in run.tags.items()}
    tags |= {"trial_key": run.trial_key, "mlflow.parentRunId": parent_id}
    run_id, status, held_params, held_tags, held_metrics = held or ("", "RUNNING", {}, {}, set())
    for name, value in params.items():
        if held_params.get(name, value) != value:
            was, now = (repr(v if len(v) < 60 else v[:60] + "...") for v in (held_params[name], value))
            raise UserError(
                f"trial {run.trial_key}: param {name} is {was} in MLflow but {now} in the tables; MLflow "
                "never changes a param: delete that run in MLflow to export it"
            )
    text = held_tags.get(LAST_STEP, "")
    logged = int(text) if text.lstrip("-").isdigit() else -1
    metrics = [(n, v, s) for s in sorted(run.steps) if s > logged for n, v in run.steps[s].items()]
    final = {f"final/{name}": value for name, value in run.final.items()}
    fresh = run.last_step > logged
    metrics += [(n, v, max(run.last_step, 0)) for n, v in final.items() if fresh or n not in held_metrics]
    params_new = [(name, value) for name, value in params.items() if name not in held_params]
    tags_new = [(name, value) for name, value in tags.items() if run_id and held_tags.get(name) != value]
    calls = list(_batches(params_new, metrics, tags_new, logged, run.last_step))
    wanted = STATUS.get(run.tags.get("status", ""))
    wanted = wanted if wanted and wanted != status else None
    if run_id and not calls and not wanted:
        return None
    return run.trial_key, run_id or None, {} if run_id else tags, calls, wanted


def _batches(params: list, metrics: list, tags: list, logged: int, last_step: int) -> Iterator[tuple]:
    """The writes as `log_batch` calls (metrics, params, tags) of MLflow's largest sizes, metrics in step
    order. A call's tags end with the last step whose metrics are all written by its end, so an export cut
    short goes on after it and logs no step twice."""
    while params or metrics or tags:
        param_batch, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
        tag_batch, tags = tags[: MAX_TAGS - 1], tags[MAX_TAGS - 1 :]
        room = MAX_ENTITIES - len(param_batch) - len(tag_batch) - 1
        metric_batch, metrics = metrics[:room], metrics[room:]
        complete = min(metrics[0][2] - 1 if metrics else last_step, last_step)
        if metric_batch and complete > logged:
            tag_batch.append((LAST_STEP, str(complete)))
            logged = complete
        yield metric_batch, param_batch, tag_batch


def _new_sqlite_in_wal_mode(uri: str) -> None:
    """A new SQLite store's file made in WAL mode, which stays with it: each of MLflow's commits is then one
    write, twice as fast for a large export. A store that exists is left as it is."""
    path = Path(unquote(uri.removeprefix("sqlite:///").partition("?")[0]))
    if uri.startswith("sqlite:///") and path.name and not path.exists() and path.parent.is_dir():
        with closing(sqlite3.connect(path)) as con:
            con.execute("PRAGMA journal_mode=WAL")
