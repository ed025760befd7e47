"""The `sweep` subcommands: each a thin layer over the public API, importing what it needs when it runs
(so that `sweep query` does not pay for torch, and `sweep train` never loads Ray)."""

from __future__ import annotations

import argparse
import os
import shlex
from typing import TYPE_CHECKING

import pandas as pd

from sweep.cli.output import print_frame
from sweep.errors import UserError
from sweep.store.location import is_s3, missing_bucket, shown

if TYPE_CHECKING:
    from sweep.engine.driver import SweepResult
    from sweep.spec import SweepSpec
    from sweep.store import ResultsStore


def train(args: argparse.Namespace) -> int:
    from sweep.spec import load_spec
    from sweep.store import ResultsStore
    from sweep.store.lease import driver_lease

    spec = load_spec(args.spec, args.overrides)
    store = ResultsStore(args.results)
    store.check_writable()
    with driver_lease(store, spec.name, "train") as lease:  # one driver writes a sweep, trials alone too
        code = _train(args, spec, store)
        lease.check()
    return code


def _train(args: argparse.Namespace, spec: SweepSpec, store: ResultsStore) -> int:
    from sweep.engine.local import record_trial
    from sweep.plans.types import TrialMeta

    config = spec.trial
    done = store.read("trials", spec.name).to_pylist() if store.exists() else []
    previous = [r for r in done if r["trial_key"] == config.key and r["status"] == "done"]
    if previous and not args.force:
        print(
            f"trial {config.key} of sweep {spec.name} is already done in {args.results}; "
            "pass --force to train it again"
        )
        print_frame(pd.DataFrame(previous)[list(SUMMARY_COLUMNS)], "table")
        return 0
    print(
        f"training trial {config.key} of sweep {spec.name} ({spec.dataset.name}, {spec.model.family} "
        f"{list(spec.model.widths)}, {spec.train.optimizer}, {spec.train.epochs} epochs)"
    )
    row = record_trial(config, spec.name, TrialMeta(kind="single"), store, on_line=print)
    print_frame(pd.DataFrame([row])[list(SUMMARY_COLUMNS)], "table")
    print(f"tables: {shlex.quote(args.results)}/{{trials,epochs,layers}}/sweep={spec.name}/")
    return 0 if row["status"] in ("done", "diverged") else 1


SUMMARY_COLUMNS = (
    "trial_key",
    "status",
    "test_acc",
    "val_acc",
    "test_loss",
    "egf",
    "gf2",
    "active_weights",
    "density",
    "wall_s",
)


def run(args: argparse.Namespace) -> int:
    from sweep.cli.tracking import with_track_option

    spec = with_track_option(_spec_from_args(args), args.track)
    if args.dry_run:
        from sweep.engine.forecast import forecast, forecast_lines

        print("\n".join(forecast_lines(spec, args.results, forecast(spec, args.results, args.address))))
        return 0
    _loopback_env(args.address or spec.ray.address)
    from sweep.cli.tracking import live_tracker
    from sweep.engine.driver import run_sweep
    from sweep.engine.recording import watching

    with watching(spec.name, live_tracker(spec, args.results)):
        return _finish(run_sweep(spec, args.results, args.address, compaction=not args.no_compact))


def _loopback_env(address: str | None) -> None:
    """A head on 127.0.0.1 needs drivers that keep to loopback too (set before Ray is imported)."""
    host = (address or "").split("://")[-1].rsplit(":", 1)[0]
    if host in ("127.0.0.1", "localhost"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def submit(args: argparse.Namespace) -> int:
    from sweep.engine.submit import JobOptions, submit_sweep
    from sweep.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    options = JobOptions(follow=args.follow, forward_credentials=args.forward_credentials)
    _, status = submit_sweep(spec, args.address, args.results, options)
    return 0 if status in (None, "SUCCEEDED") else 1


def _spec_from_args(args: argparse.Namespace) -> SweepSpec:
    from sweep.spec import apply_overrides, load_spec, parse_spec, read_yaml

    if args.spec_env:
        text = os.environ.get(args.spec_env)
        if text is None:
            raise UserError(f"--spec-env {args.spec_env}: no such environment variable")
        return parse_spec(apply_overrides(read_yaml(text, f"${args.spec_env}"), args.overrides))
    if not args.spec:
        raise UserError("run: give a spec file (or --spec-env VAR)")
    return load_spec(args.spec, args.overrides)


def resume(args: argparse.Namespace) -> int:
    _check_name(args.name)
    _loopback_env(args.address)
    from sweep.cli.tracking import resumed_tracker
    from sweep.engine.driver import resume_sweep
    from sweep.engine.recording import watching

    with watching(args.name, resumed_tracker(args.name, args.results, args.track)):
        result = resume_sweep(args.name, args.results, args.address, compaction=not args.no_compact)
    return _finish(result)


def _finish(result: SweepResult) -> int:
    """Leaderboard, timing and where the tables are; non-zero when every trial failed."""
    from sweep.store.summary import leaderboard, sweep_metric, timing_line

    name, metric = result.name, sweep_metric(result.spec, result.spec["kind"])
    print(f"\nleaderboard of {name} (by {metric}):")
    print_frame(leaderboard(result.trials, metric), "table")
    if result.ran:
        print(timing_line(result.trained, result.wall_s))
        if result.replayed:
            many = "proposals repeated a configuration" if result.replayed > 1 else "proposal repeated one"
            print(
                f"{result.replayed} {many} already trained, answered with its result (replayed): the "
                "tables hold fewer trials than the search proposed"
            )
        print(f"driver: {result.peak_mb:.0f} MB at most")
    else:
        print(f"sweep {name} was complete already: nothing ran")
    print(f"tables: {shlex.quote(result.results)}/{{trials,epochs,layers}}/sweep={name}/")
    print(
        f"""query:  sweep query "SELECT role, avg(test_acc) FROM trials WHERE sweep = '{name}' """
        f"""GROUP BY role" --results {shown(result.results)}"""
    )
    failed = [r for r in result.trials if r["status"] == "error"]
    return 1 if result.trials and len(failed) == len(result.trials) else 0


def _check_name(name: str) -> None:
    """A sweep name on the command line is a name, never a path into or out of the results folder."""
    from sweep.spec import check_sweep_name

    check_sweep_name(name, "sweep name")


def _existing_store(results: str) -> ResultsStore:
    from sweep.store import ResultsStore

    store = ResultsStore(results)
    if not store.exists():
        missing = missing_bucket(store.fs, store.base) if is_s3(store.root) else None
        raise UserError(
            f"--results {results}: {missing or 'no results there yet'} (run 'sweep train' or 'sweep run')"
        )
    return store
