"""Live tracking: the bench sweep with its runs sent to MLflow as epochs arrive (`--track`, a local SQLite
store) against the same sweep untracked, both through `sweep run`, alternating, on one embedded Ray started
for the comparison (its start is no part of either side: the ratio is the tracker's own cost)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sweep.bench.harness import Result, Settings, alternate
from sweep.bench.sweep import bench_spec
from sweep.errors import UserError

INSTALL = "pip install 'sparse-sweep[mlflow]'"


def tracking_cost(settings: Settings) -> Result:
    """The tracked sweep's wall / the untracked sweep's wall (full: 8 trials of 4 epochs, 3 pairs; quick: 2
    trials of 1 epoch, one pair). A tracker that failed fails the comparison: its figure would be a lie."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise UserError(f"tracking_overhead needs the mlflow package: {INSTALL}") from None
    from sweep.engine.session import ray_session  # loads Ray: only when this comparison runs
    from sweep.engine.tuner import run_sweep
    from sweep.engine.watchers import watching
    from sweep.trackers.live import LiveTracker
    from sweep.trackers.sinks import MlflowSink

    spec = bench_spec(settings, seeds=2)
    sent: list[int] = []

    def untracked() -> None:
        with tempfile.TemporaryDirectory() as results:
            run_sweep(spec, results, echo=lambda _: None)

    def tracked() -> None:
        with tempfile.TemporaryDirectory() as results:
            uri = f"sqlite:///{Path(results) / 'mlflow.db'}"
            tracker = LiveTracker(spec.name, MlflowSink(spec.name, uri), results, echo=lambda _: None)
            with watching(spec.name, tracker):
                run_sweep(spec, results, echo=lambda _: None)
            if tracker.failure is not None:
                raise UserError(f"tracking_overhead: the tracker failed ({tracker.failure})")
            sent.append(tracker.sent)

    reps = 1 if settings.quick else 3
    with ray_session(None, spec, echo=lambda _: None):
        times_plain, times_tracked = alternate(untracked, tracked, settings, repeats=reps, warmup=False)
    return Result(
        ratios=[t / p for t, p in zip(times_tracked, times_plain, strict=True)],
        raw={"untracked_s": times_plain, "tracked_s": times_tracked, "snapshots_sent": sent},
    )
