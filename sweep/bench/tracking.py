"""Live tracking: the bench sweep with its runs sent to MLflow as epochs arrive (`--track`, a local SQLite
store) against the same sweep untracked, both through `sweep run`, alternating, on one embedded Ray started
for the comparison (its start is no part of either side: the ratio is the tracker's own cost)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from sweep.bench.harness import Result, Settings, alternate
from sweep.bench.sweep import bench_spec
from sweep.errors import UserError

INSTALL = "pip install 'sparse-sweep[mlflow]'"


def tracking_cost(settings: Settings) -> Result:
    """The tracked sweep's wall / the untracked sweep's wall (full: 8 trials of 4 epochs, 3 pairs; quick: 2
    trials of 1 epoch, one pair). Each sweep is a new one (its own name, so a new MLflow experiment and new
    runs) in an MLflow store made before the timing, as a user's is after their first tracked sweep; making
    a new store, a one-off cost of seconds, is recorded apart. A tracker that failed fails the comparison:
    its figure would be a lie."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise UserError(f"tracking_overhead needs the mlflow package: {INSTALL}") from None
    from sweep.engine.driver import run_sweep
    from sweep.engine.recording import watching
    from sweep.engine.session import ray_session  # loads Ray: only when this comparison runs
    from sweep.trackers.live import LiveTracker
    from sweep.trackers.mlflow_export import open_store
    from sweep.trackers.sinks import MlflowSink

    spec = bench_spec(settings, seeds=2)
    sent: list[int] = []
    sweeps = iter(range(1_000))

    def untracked() -> None:
        named = dataclasses.replace(spec, name=f"{spec.name}-{next(sweeps)}")
        with tempfile.TemporaryDirectory() as results:
            run_sweep(named, results, echo=lambda _: None)

    def tracked() -> None:
        named = dataclasses.replace(spec, name=f"{spec.name}-{next(sweeps)}")
        with tempfile.TemporaryDirectory() as results:
            tracker = LiveTracker(named.name, MlflowSink(named.name, uri), results, echo=lambda _: None)
            with watching(named.name, tracker):
                run_sweep(named, results, echo=lambda _: None)
            if tracker.failure is not None:
                raise UserError(f"tracking_overhead: the tracker failed ({tracker.failure})")
            sent.append(tracker.sent)

    reps = 1 if settings.quick else 3
    with tempfile.TemporaryDirectory() as store, ray_session(None, spec, echo=lambda _: None):
        uri = f"sqlite:///{Path(store) / 'mlflow.db'}"
        began = time.perf_counter()
        open_store(uri)
        new_store_s = time.perf_counter() - began
        times_plain, times_tracked = alternate(untracked, tracked, settings, repeats=reps, warmup=False)
    return Result(
        ratios=[t / p for t, p in zip(times_tracked, times_plain, strict=True)],
        raw={
            "untracked_s": times_plain,
            "tracked_s": times_tracked,
            "snapshots_sent": sent,
            "new_store_s": new_store_s,
        },
    )
