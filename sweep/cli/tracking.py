"""`--track TRACKER[=URI]` of `sweep run` and `sweep resume`: the sweep's live tracker, from the option or the
spec's `track` section (the option wins; `--track none` turns it off)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from sweep.errors import UserError

if TYPE_CHECKING:
    from sweep.spec import SweepSpec
    from sweep.trackers.live import LiveTracker


def with_track_option(spec: SweepSpec, option: str | None) -> SweepSpec:
    """The spec with `--track` in its `track` section."""
    from sweep.spec.schema import MlflowTrackSpec, TrackSpec

    if option is None:
        return spec
    tracker, _, uri = option.partition("=")
    if tracker == "none" and not uri:
        return dataclasses.replace(spec, track=TrackSpec())
    if tracker != "mlflow":
        raise UserError(f"--track {option}: unknown tracker (give mlflow, mlflow=URI or none)")
    return dataclasses.replace(spec, track=TrackSpec(mlflow=MlflowTrackSpec(uri=uri or None)))


def live_tracker(spec: SweepSpec, results: str) -> LiveTracker | None:
    """The tracker the spec asks for (None: none); a URI with credentials in it is one line."""
    if spec.track.mlflow is None:
        return None
    from sweep.trackers.live import LiveTracker, tracker_uri

    uri = tracker_uri(spec.track.mlflow.uri, results)
    return LiveTracker(spec.name, uri, results, print)


def resumed_tracker(name: str, results: str, option: str | None) -> LiveTracker | None:
    """The tracker of a sweep that resumes: its saved spec's, unless `--track` says otherwise (None when
    the sweep is not there: the resume says so)."""
    from sweep.spec import parse_spec
    from sweep.store import ResultsStore

    state = ResultsStore(results).sweep_state(name) if option != "none" else None
    return live_tracker(with_track_option(parse_spec(state["spec"]), option), results) if state else None


def add_track_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--track",
        metavar="TRACKER[=URI]",
        help="send the runs to a tracker live, as epochs arrive: mlflow (sqlite mlflow.db beside the "
        "results), mlflow=URI (a tracking server or store), or none (default: the spec's track section)",
    )
