"""The Ray layer: sweeps as Ray Tune runs. It adapts the core trainer to Tune and adds nothing scientific.

A sweep runs in stages, each one Tune experiment under `<storage>/<sweep name>[.<stage>]`:
- `single` and `sc_sdc`: one grid of planned trials (trials already done in the tables are skipped);
- `snas`: the Optuna search, then optionally the baselines at the best trial's active-weight count.
Workers report every epoch with `ray.tune.report`; a driver-side callback writes the rows, so the tables
fill while the sweep runs. The sweep's spec and stage states live in `<results>/_sweeps/<name>.json`, which
`sweep resume` reads to continue an interrupted sweep with `Tuner.restore`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables of Tune's own; progress is ours
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the Parquet tables are the record, not result.json
}.items():
    os.environ.setdefault(_key, _value)

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402

from sweep import snas  # noqa: E402
from sweep.data import ArrayDataset, load_arrays  # noqa: E402
from sweep.errors import Interrupted, UserError  # noqa: E402
from sweep.records import PlannedTrial, TrialMeta, TrialRecorder, facts_from_dict  # noqa: E402
from sweep.results import EPOCHS, ResultsStore  # noqa: E402
from sweep.sc_sdc import sc_sdc_trials  # noqa: E402
from sweep.spec import METRICS, SweepSpec, config_to_dict, parse_spec, parse_trial  # noqa: E402
from sweep.summary import is_feasible, pareto_keys  # noqa: E402
from sweep.worker import (  # noqa: E402
    PLANNED,
    FinishedTrials,
    dataset_key,
    finished_trials_name,
    run_planned_trial,
    trial_name,
)

Echo = Callable[[str], None]
_EPOCH_COLUMNS = [name for name in EPOCHS.names if name != "trial_key"]


# ------------------------------------------------------------------------------------- driver callbacks


class ResultsCallback(tune.Callback):
    """Writes each trial's rows as its reports arrive, and its `trials` row when it ends.

    The writes run on one background thread, in order: a worker's `tune.report` waits for the driver to
    take its result, so the driver's loop must not wait for Parquet files.
    """

    def __init__(self, results: str, sweep: str, max_active_weights: int | None = None) -> None:
        self.results, self.sweep, self.max_active_weights = results, sweep, max_active_weights
        self._recorders: dict[str, TrialRecorder] = {}
        self._store: ResultsStore | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def __getstate__(self) -> dict:  # pickled into Tune's experiment state: keep only the settings
        return {"results": self.results, "sweep": self.sweep, "max_active_weights": self.max_active_weights}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _recorder(self, trial: tune.experiment.Trial, fresh: bool = False) -> TrialRecorder:
        if fresh or trial.trial_id not in self._recorders:
            if self._store is None:
                self._store = ResultsStore(self.results)
            entry = trial.config[PLANNED]
            self._recorders[trial.trial_id] = TrialRecorder(
                self._store, self.sweep, parse_trial(entry["config"]), TrialMeta(**entry["meta"])
            )
        return self._recorders[trial.trial_id]

    def _write(self, action: Callable[..., object], *args: object, **kwargs: object) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-results")
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        self._pending.append(self._writer.submit(action, *args, **kwargs))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._recorder(trial, fresh=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not result.get("replayed"):
            metrics = {name: result.get(name) for name in _EPOCH_COLUMNS}
            started = datetime.fromtimestamp(result["trial_started"], UTC)
            facts = facts_from_dict(result["facts"])
            self._write(self._recorder(trial).add_epoch, metrics, result["layers"], facts, started)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        if last.get("replayed"):
            return
        recorder = self._recorder(trial)
        if last.get("diverged"):
            status = "diverged"
        else:
            status = "done" if last.get("epoch") == recorder.config.train.epochs else "stopped"
        extra = {}
        if self.max_active_weights is not None and last.get("active_weights") is not None:
            extra["feasible"] = _within_budget(last, self.max_active_weights)
        self._write(recorder.finish, status, ended_at=datetime.now(UTC), **extra)
        if status == "done":  # the searcher may propose this configuration again: replay, don't retrain
            with contextlib.suppress(ValueError):  # no such actor: a driver of an older sweep
                finished = ray.get_actor(finished_trials_name(self.sweep))
                finished.add.remote({recorder.config.key: _replay(last, last["epoch"])})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(self._recorder(trial).finish, "error", _error_message(trial), ended_at=datetime.now(UTC))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Every row is on disk before the sweep returns; a failed write fails the sweep."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        failures = [f.exception() for f in self._pending if f.exception()]
        self._pending = []
        if failures:
            raise failures[0]


def _error_message(trial: Any) -> str:
    """The exception line of the trial's traceback (the full text stays in Tune's error file)."""
    try:
        with open(trial.error_file) as handle:
            lines = [line.strip() for line in handle.read().splitlines() if line.strip()]
    except (OSError, TypeError):
        return "the trial failed (no error file)"
    for line in reversed(lines):
        head = line.split(":", 1)[0].split(".")[-1]
        if head.endswith(("Error", "Exception", "Interrupt")) or head in ("RayTaskError", "RayActorError"):
            return line
    return lines[-1] if lines else "the trial failed"


class ProgressCallback(tune.Callback):
    """One line per finished trial: how many are done and running, its result, and the best so far."""

    def __init__(self, total: int, metric: str, echo: Echo = print, budget: int | None = None) -> None:
        self.total, self.metric, self.echo, self.budget = total, metric, echo, budget
        self._ended: dict[str, float | None] = {}  # trial id -> its metric (None: failed or over budget)

    def __getstate__(self) -> dict:
        return {"total": self.total, "metric": self.metric, "budget": self.budget}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, "error")

    def _line(self, trials: list, trial: Any, outcome: str) -> None:
        for other in trials:  # trials that ended before a resume
            if other.status in ("TERMINATED", "ERROR") and other.trial_id not in self._ended:
                ranked = other.status != "ERROR" and _within_budget(other.last_result, self.budget)
                self._ended[other.trial_id] = _metric(other.last_result, self.metric, not ranked)
        last = trial.last_result or {}
        outcome = "diverged" if last.get("diverged") else outcome
        if outcome == "done" and last.get("replayed"):
            outcome = "replayed"  # a configuration that had finished: its result again, no training
        if outcome in ("done", "replayed") and not _within_budget(last, self.budget):
            outcome = "infeasible"  # over search.max_active_weights: shown, never the best
        self._ended[trial.trial_id] = _metric(last, self.metric, outcome not in ("done", "replayed"))
        running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in self._ended)
        values = [v for v in self._ended.values() if v is not None]
        if outcome == "error":
            detail = _error_message(trial)
        else:
            value = last.get(self.metric)
            shown = f"{value:.4f}" if isinstance(value, float) else "-"
            detail = f"{self.metric} {shown}  active {last.get('active_weights') or 0:,}"
        best = f"{max(values):.4f}" if values else "-"
        self.echo(
            f"[{len(self._ended):>3}/{self.total}] {outcome:<8} {detail}  | running {running}, "
            f"best {self.metric} {best}"
        )


def _within_budget(result: Mapping | None, budget: int | None) -> bool:
    """Whether a trial's result keeps to `search.max_active_weights` (no budget: always)."""
    return budget is None or ((result or {}).get("active_weights") or 0) <= budget


def _metric(result: Mapping | None, metric: str, failed: bool) -> float | None:
    value = (result or {}).get(metric)
    return value if not failed and isinstance(value, float) and value == value else None


# ------------------------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    name: str
    spec: dict
    results: str
    wall_s: float
    trials: list[dict]


def run_sweep(spec: SweepSpec, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Run a sweep from the start (grids skip trials already done in the tables)."""
    store = ResultsStore(results)
    store.check_writable()
    state = store.sweep_state(spec.name)
    if state and state["stage"] != "done":
        raise UserError(
            f"sweep {spec.name} in {results} was interrupted; continue it with "
            f"'sweep resume {spec.name} --results {results}'"
        )
    if state and spec.kind == "snas":
        if parse_spec(state["spec"]) != spec:
            raise UserError(
                f"sweep {spec.name} already ran in {results} with another spec; give this one another name "
                "(--set name=...)"
            )
        echo(f"sweep {spec.name} is already complete in {results}")
        return _run(spec, store, state, address, echo, resume=False)
    state = {"name": spec.name, "spec": config_to_dict(spec), "stage": "main"}
    return _run(spec, store, state, address, echo, resume=False)


def resume_sweep(name: str, results: str, address: str | None = None, echo: Echo = print) -> SweepResult:
    """Continue an interrupted sweep: restore its Tune state, rerun no finished trial."""
    store = ResultsStore(results)
    state = store.sweep_state(name)
    if state is None:
        known = ", ".join(s["name"] for s in store.sweep_states()) or "none"
        raise UserError(f"no sweep named {name!r} in {results} (sweeps there: {known})")
    if state["stage"] == "done":
        echo(f"sweep {name} is already complete")
    return _run(parse_spec(state["spec"]), store, state, address, echo, resume=True)


def _run(
    spec: SweepSpec, store: ResultsStore, state: dict, address: str | None, echo: Echo, resume: bool
) -> SweepResult:
    started = time.perf_counter()
    planned = sc_sdc_trials(spec) if spec.kind == "sc_sdc" else [PlannedTrial(spec.trial, TrialMeta())]
    stages = ["main", "baselines"] if spec.kind == "snas" and spec.search.baselines else ["main"]
    todo = stages[stages.index(state["stage"]) :] if state["stage"] in stages else []
    if todo:
        with ThreadPoolExecutor(max_workers=1) as loader:
            loading = loader.submit(_load_data, spec, planned)  # reads the data while Ray starts
            with ray_session(address or spec.ray.address, spec, echo):
                data = loading.result()
                for stage in todo:
                    state["stage"] = stage
                    store.save_sweep_state(state)
                    _run_stage(spec, store, stage, data, planned, echo, resume=resume)
        state["stage"] = "done"
        store.save_sweep_state(state)
    rows = store.rows("trials", spec.name)
    return SweepResult(spec.name, state["spec"], store.root, time.perf_counter() - started, rows)


def _run_stage(
    spec: SweepSpec,
    store: ResultsStore,
    stage: str,
    data: Mapping[str, ArrayDataset],
    planned: list[PlannedTrial],
    echo: Echo,
    resume: bool,
) -> None:
    experiment = spec.name if stage == "main" else f"{spec.name}.{stage}"
    storage = _storage(spec, store)
    path = f"{storage.rstrip('/')}/{experiment}"
    metric = spec.search.metric if spec.kind == "snas" else "test_acc"
    done = {r["trial_key"]: r for r in store.rows("trials", spec.name) if r["status"] == "done"}
    finished = FinishedTrials.options(name=finished_trials_name(spec.name), get_if_exists=True).remote()
    ray.get(finished.add.remote({key: _replay(row, row["epochs_done"]) for key, row in done.items()}))
    trainable = tune.with_resources(
        tune.with_parameters(
            run_planned_trial, data=data, threads=max(1, int(spec.resources.cpu)), finished=finished
        ),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    if resume and tune.Tuner.can_restore(path):
        echo(f"resuming {experiment} from {path}")
        with _quiet_tune():  # restoring reads no result.json (we write none) and would warn per trial
            tuner = tune.Tuner.restore(
                path, trainable=trainable, resume_unfinished=True, resume_errored=False
            )
    else:
        callbacks = [ResultsCallback(store.root, spec.name, _constraint(spec))]
        run_config = tune.RunConfig(name=experiment, storage_path=storage, verbose=0, callbacks=callbacks)
        settings = {
            "reuse_actors": True,
            "max_concurrent_trials": spec.ray.max_concurrent_trials,
            "trial_name_creator": trial_name,
            "trial_dirname_creator": trial_name,
        }
        if spec.kind == "snas" and stage == "main":
            settings["max_concurrent_trials"] = spec.ray.max_concurrent_trials or _slots(spec)
            tune_config = _search_config(spec, data, settings, echo)
            callbacks.append(ProgressCallback(spec.search.num_samples, metric, echo, _constraint(spec)))
            tuner = tune.Tuner(trainable, run_config=run_config, tune_config=tune_config)
        else:
            if stage == "baselines":
                planned = _baselines(spec, store, data, echo)
            todo, seen = [], set(done)
            for item in planned:  # each trial once, whatever the grid repeats
                if item.config.key not in seen:
                    seen.add(item.config.key)
                    todo.append(item)
            skipped = sum(1 for item in planned if item.config.key in done)
            if skipped:
                echo(f"{skipped} of {len(planned)} planned trials are done already; running {len(todo)}")
            if not todo:
                return
            callbacks.append(ProgressCallback(len(todo), metric, echo))
            grid = tune.grid_search([snas.planned_entry(p) for p in todo])
            tuner = tune.Tuner(
                trainable,
                param_space={PLANNED: grid},
                run_config=run_config,
                tune_config=tune.TuneConfig(**settings),
            )
    expected = spec.search.num_samples if spec.kind == "snas" and stage == "main" else None
    if not _fit(tuner, expected):
        raise Interrupted(
            f"sweep {spec.name} was interrupted; continue it with 'sweep resume {spec.name} "
            f"--results {store.root}'"
        )
    if spec.kind == "snas" and stage == "main":
        _mark_pareto(store, spec)


def _search_config(
    spec: SweepSpec, data: Mapping[str, ArrayDataset], settings: dict, echo: Echo
) -> tune.TuneConfig:
    search = spec.search
    arrays = data[dataset_key(spec.dataset)]
    template = snas.make_template(spec, arrays.input_shape, arrays.num_classes)
    scheduler = None
    if search.scheduler == "asha":
        scheduler = ASHAScheduler(
            metric=search.metric,
            mode="max",
            max_t=spec.train.epochs + 1,
            grace_period=min(2, spec.train.epochs + 1),
            reduction_factor=3,
        )
    echo(
        f"searching {search.num_samples} trials: {search.sampler} on {search.metric}, "
        f"{len(template.warm_starts)} warm starts, levels {list(template.levels)}"
    )
    return tune.TuneConfig(
        search_alg=snas.make_searcher(spec, template),
        scheduler=scheduler,
        num_samples=search.num_samples,
        **settings,
    )


def _baselines(
    spec: SweepSpec, store: ResultsStore, data: Mapping[str, ArrayDataset], echo: Echo
) -> list[PlannedTrial]:
    arrays = data[dataset_key(spec.dataset)]
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    best = _best(rows, spec.search.metric)
    if best is None:
        echo("no finished search trial: no baselines to train")
        return []
    echo(f"training the baselines at the best trial's {best['active_weights']:,} active weights")
    seeds = spec.search.baseline_seeds
    return snas.baseline_trials(best, arrays.input_shape, arrays.num_classes, seeds)


def _slots(spec: SweepSpec) -> int:
    """How many trials fit on the cluster at once (a searcher otherwise proposes one trial at a time)."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / spec.resources.cpu
    if spec.resources.gpu > 0:
        slots = min(slots, resources.get("GPU", 0.0) / spec.resources.gpu)
    return max(1, int(slots))


def _constraint(spec: SweepSpec) -> int | None:
    return spec.search.max_active_weights if spec.kind == "snas" else None


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune's own logging off: trial errors land in the tables and in our progress lines."""
    logger = logging.getLogger("ray.tune")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fit(tuner: tune.Tuner, expected: int | None) -> bool:
    """Run Tune quietly; True when every trial ended.

    Tune returns normally after Ctrl-C, having saved its state, and marks the trials it cut short as
    terminated; only their last result lacks `done`. So a trial that neither failed nor reported
    `done`, or fewer trials than a search asked for, means the sweep was interrupted.
    """
    with _quiet_tune():
        results = tuner.fit()
    ended = sum(1 for result in results if result.error is not None or (result.metrics or {}).get("done"))
    return ended == len(results) and (expected is None or len(results) >= expected)


def _replay(values: Mapping[str, Any], epoch: int) -> dict:
    """What a finished trial reports again when its configuration comes up again (a `trials` row or the
    trial's last result): enough for the searcher, the scheduler and the progress line."""
    return {"epoch": epoch, **{name: values.get(name) for name in ("trial_key", "active_weights", *METRICS)}}


def _best(rows: list[dict], metric: str) -> dict | None:
    usable = [r for r in rows if r["status"] == "done" and r.get(metric) is not None and is_feasible(r)]
    return max(usable, key=lambda r: r[metric]) if usable else None


def _mark_pareto(store: ResultsStore, spec: SweepSpec) -> None:
    rows = [r for r in store.rows("trials", spec.name) if r["role"] in ("search", "warm_start")]
    front = pareto_keys(rows, spec.search.metric)
    for row in rows:
        flag = row["trial_key"] in front
        if row["pareto"] is not flag:
            store.write("trials", spec.name, row["trial_key"], [{**row, "pareto": flag}])


def _load_data(spec: SweepSpec, planned: list[PlannedTrial]) -> dict[str, ArrayDataset]:
    """Each data set the sweep needs, read once on the driver; Tune ships it once per node."""
    specs = {dataset_key(spec.dataset): spec.dataset}
    for item in planned:
        specs.setdefault(dataset_key(item.config.dataset), item.config.dataset)
    return {key: load_arrays(dataset) for key, dataset in specs.items()}


def _storage(spec: SweepSpec, store: ResultsStore) -> str:
    if spec.ray.storage:
        return spec.ray.storage
    return f"{store.root.rstrip('/')}/_tune" if "://" in store.root else os.path.join(store.base, "_tune")


# ------------------------------------------------------------------------------------------- Ray itself


@contextlib.contextmanager
def ray_session(address: str | None, spec: SweepSpec, echo: Echo) -> Iterator[None]:
    """Join the cluster at `address`, or start an embedded local Ray; leave as we found it."""
    if ray.is_initialized():
        yield
        return
    if address:
        _check_reachable(address)
        runtime_env = (
            {"py_modules": [os.path.dirname(os.path.abspath(__file__))]}
            if address.startswith("ray://")
            else None
        )
        try:
            ray.init(
                address=address, log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"ray.address {address}: cannot connect ({str(exc).splitlines()[0]})") from None
        where = f"the Ray cluster at {address}"
    else:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        where = "an embedded local Ray"
    try:
        resources = ray.cluster_resources()
        echo(
            f"sweep {spec.name} ({spec.kind}) on {where}: {resources.get('CPU', 0):g} CPUs, "
            f"{resources.get('GPU', 0):g} GPUs; {spec.resources.cpu:g} CPU and {spec.resources.gpu:g} GPU "
            "per trial"
        )
        _check_resources(spec, resources, autoscaling=bool(address))
        yield
    finally:
        ray.shutdown()


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
