"""`--track TRACKER[=PLACE]` of `sweep run` and `sweep resume`: the sweep's live trackers, from the options or
the spec's `track` section (the options, when given, replace the section; `--track none` turns it off)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import UserError

if TYPE_CHECKING:
    from sweep.spec import SweepSpec
    from sweep.trackers.live import LiveTrackers

TRACKERS = ("mlflow", "tensorboard", "wandb")


def with_track_option(spec: SweepSpec, options: list[str] | None) -> SweepSpec:
    """The spec with the `--track` options as its `track` section."""
    from sweep.spec.schema import MlflowTrackSpec, TensorboardTrackSpec, TrackSpec, WandbTrackSpec

    if not options:
        return spec
    chosen: dict[str, object] = {}
    for option in options:
        tracker, _, place = option.partition("=")
        if tracker == "none" and not place and len(options) == 1:
            return dataclasses.replace(spec, track=TrackSpec())
        if tracker not in TRACKERS or tracker in chosen:
            why = "given twice" if tracker in chosen else "unknown tracker"
            raise UserError(
                f"--track {option}: {why} (give mlflow[=URI], tensorboard[=LOGDIR] or wandb[=FOLDER], "
                "each once, or none alone)"
            )
        made = {"mlflow": MlflowTrackSpec, "tensorboard": TensorboardTrackSpec, "wandb": WandbTrackSpec}
        chosen[tracker] = made[tracker](place or None)
    return dataclasses.replace(spec, track=TrackSpec(**chosen))  # type: ignore[arg-type]


def live_tracker(spec: SweepSpec, results: str) -> LiveTrackers | None:
    """The trackers the spec asks for (None: none); an MLflow URI with credentials in it is one line."""
    from sweep.trackers.live import LiveTracker, LiveTrackers, tracker_uri
    from sweep.trackers.sinks import MlflowSink, Sink, TensorboardSink, WandbSink

    track, sinks = spec.track, list[Sink]()
    if track.mlflow is not None:
        sinks.append(MlflowSink(spec.name, tracker_uri(track.mlflow.uri, results)))
    if track.tensorboard is not None:
        from sweep.trackers.tensorboard_export import default_logdir

        sinks.append(TensorboardSink(spec.name, Path(track.tensorboard.logdir or default_logdir(results))))
    if track.wandb is not None:
        from sweep.trackers.wandb_export import default_folder

        folder = Path(track.wandb.folder or default_folder(results))
        sinks.append(WandbSink(spec.name, folder, track.wandb.online))
    if not sinks:
        return None
    return LiveTrackers([LiveTracker(spec.name, sink, results, print) for sink in sinks])


def resumed_tracker(name: str, results: str, options: list[str] | None) -> LiveTrackers | None:
    """The trackers of a sweep that resumes: its saved spec's, unless `--track` says otherwise (None when
    the sweep is not there: the resume says so)."""
    from sweep.spec import parse_spec
    from sweep.store import ResultsStore

    state = ResultsStore(results).sweep_state(name) if options != ["none"] else None
    return live_tracker(with_track_option(parse_spec(state.spec), options), results) if state else None


def add_track_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--track",
        action="append",
        metavar="TRACKER[=PLACE]",
        help="send the runs to a tracker live, as epochs arrive (repeat for several): mlflow (sqlite "
        "mlflow.db beside the results) or mlflow=URI (a tracking server or store), tensorboard[=LOGDIR] "
        "(default: the results' tensorboard/), wandb[=FOLDER] (offline runs; the spec's track.wandb.online "
        "sends them to W&B), or none (default: the spec's track section)",
    )
