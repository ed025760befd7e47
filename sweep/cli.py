"""The `sweep` command. Each subcommand is a thin layer over the public API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from sweep.errors import Interrupted, UserError

if TYPE_CHECKING:
    from sweep.results import ResultsStore
    from sweep.spec import SweepSpec
    from sweep.tune import SweepResult

DEFAULT_RESULTS = "results"
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def main(argv: Sequence[str] | None = None) -> int:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except UserError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("sweep: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description="Research sweeps on sparse neural networks.")
    sub = parser.add_subparsers(title="commands")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def spec_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
        p.add_argument("spec", help="the YAML spec", nargs="?" if optional else None)
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a dotted spec key, the value parsed as YAML (repeatable)",
        )

    def results_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--results",
            default=DEFAULT_RESULTS,
            metavar="DIR",
            help="results folder or pyarrow.fs URI (default: results)",
        )

    p = command("train", _train, "Train one trial of a spec in this process (no Ray).")
    spec_args(p)
    results_arg(p)
    p.add_argument("--force", action="store_true", help="train again even if the trial is already done")

    p = command("run", _run, "Run a sweep (single, snas or sc_sdc) on Ray Tune.")
    spec_args(p, optional=True)
    p.add_argument(
        "--spec-env",
        metavar="VAR",
        help="read the spec's YAML from this environment variable "
        "instead of a file (what 'sweep submit' uses)",
    )
    results_arg(p)
    p.add_argument(
        "--address",
        default=None,
        help="join a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
        "(default: the spec's ray.address, else an embedded local Ray)",
    )

    p = command("submit", _submit, "Submit a sweep as a Ray job to a remote cluster.")
    spec_args(p)
    p.add_argument(
        "--address", required=True, metavar="URL", help="the cluster's job server, e.g. http://HEAD:8265"
    )
    p.add_argument(
        "--results",
        required=True,
        metavar="DIR",
        help="where the job writes the tables: an absolute path on the head node or a URI",
    )
    p.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")

    p = command("resume", _resume, "Continue an interrupted sweep where it stopped.")
    p.add_argument("name", help="the sweep's name")
    results_arg(p)
    p.add_argument("--address", default=None, help="as for run")

    p = command("report", _report, "Write a sweep's figures and report.md from its tables.")
    p.add_argument("name", help="the sweep's name")
    results_arg(p)
    p.add_argument("--out", metavar="DIR", help="where to write (default: <results>/reports/<name>)")

    for name, help_text in (
        ("status", "The sweeps under a results folder, or one sweep in detail."),
        ("list", "The sweeps under a results folder (same as status with no name)."),
    ):
        p = command(name, _status, help_text)
        if name == "status":
            p.add_argument("name", nargs="?", help="a sweep's name, for its details")
        else:
            p.set_defaults(name=None)
        results_arg(p)

    p = command("bench", _bench, "Measure the trainer and the sweep layer against hand-written baselines.")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (about a minute)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", metavar="FILE.json", help="also write the figures as JSON")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these comparisons")

    p = command("query", _query, "Run DuckDB SQL over the tables trials, epochs and layers.")
    p.add_argument("sql")
    results_arg(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def _train(args: argparse.Namespace) -> int:
    from sweep.records import TrialMeta, record_trial
    from sweep.results import ResultsStore
    from sweep.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    store = ResultsStore(args.results)
    store.check_writable()
    config = spec.trial
    done = store.read("trials", spec.name).to_pylist() if store.exists() else []
    previous = [r for r in done if r["trial_key"] == config.key and r["status"] == "done"]
    if previous and not args.force:
        print(
            f"trial {config.key} of sweep {spec.name} is already done in {args.results}; "
            "pass --force to train it again"
        )
        _print_frame(pd.DataFrame(previous)[list(SUMMARY_COLUMNS)], "table")
        return 0
    print(
        f"training trial {config.key} of sweep {spec.name} ({spec.dataset.name}, {spec.model.family} "
        f"{list(spec.model.widths)}, {spec.train.optimizer}, {spec.train.epochs} epochs)"
    )
    row = record_trial(config, spec.name, TrialMeta(kind="single"), store, on_line=print)
    _print_frame(pd.DataFrame([row])[list(SUMMARY_COLUMNS)], "table")
    print(f"tables: {args.results}/{{trials,epochs,layers}}/sweep={spec.name}/")
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


def _run(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    _loopback_env(args.address or spec.ray.address)
    from sweep.tune import run_sweep

    return _finish(run_sweep(spec, args.results, args.address))


def _loopback_env(address: str | None) -> None:
    """A head on 127.0.0.1 needs drivers that keep to loopback too (set before Ray is imported)."""
    host = (address or "").split("://")[-1].rsplit(":", 1)[0]
    if host in ("127.0.0.1", "localhost"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _submit(args: argparse.Namespace) -> int:
    from sweep.spec import load_spec
    from sweep.submit import submit_sweep

    spec = load_spec(args.spec, args.overrides)
    _, status = submit_sweep(spec, args.address, args.results, follow=args.follow)
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


def _resume(args: argparse.Namespace) -> int:
    _loopback_env(args.address)
    from sweep.tune import resume_sweep

    result = resume_sweep(args.name, args.results, args.address)
    return _finish(result)


def _finish(result: SweepResult) -> int:
    """Leaderboard, timing and where the tables are; non-zero when every trial failed."""
    from sweep.summary import leaderboard, sweep_metric, timing_line

    name, metric = result.name, sweep_metric(result.spec, result.spec["kind"])
    print(f"\nleaderboard of {name} (by {metric}):")
    _print_frame(leaderboard(result.trials, metric), "table")
    print(timing_line(result.trials, result.wall_s))
    print(f"tables: {result.results}/{{trials,epochs,layers}}/sweep={name}/")
    print(
        f"""query:  sweep query "SELECT role, avg(test_acc) FROM trials WHERE sweep = '{name}' """
        f"""GROUP BY role" --results {result.results}"""
    )
    failed = [r for r in result.trials if r["status"] == "error"]
    return 1 if result.trials and len(failed) == len(result.trials) else 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweep.report import write_report
    from sweep.results import ResultsStore

    store = ResultsStore(args.results)
    local = "://" not in args.results
    out = Path(args.out) if args.out else (Path(args.results) if local else Path(".")) / "reports" / args.name
    path = write_report(store, args.name, out)
    print(f"report of {args.name}: {path}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from sweep.summary import leaderboard, status_table, sweep_metric

    store = _existing_store(args.results)
    names = [args.name] if args.name else store.sweeps()
    states = {s["name"]: s for s in store.sweep_states() if not args.name or s["name"] == args.name}
    rows = {name: store.rows("trials", name) for name in names}
    if args.name and not rows[args.name] and args.name not in states:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"no sweep named {args.name!r} in {args.results} (sweeps there: {known})")
    _print_frame(status_table(rows, states), "table")
    if args.name:
        spec = states.get(args.name, {}).get("spec", {})
        kind = spec.get("kind") or (rows[args.name][0]["kind"] if rows[args.name] else "single")
        metric = sweep_metric(spec, kind)
        print(f"\nbest trials (by {metric}):")
        _print_frame(leaderboard(rows[args.name], metric, top=5), "table")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from sweep.bench import GOALS, run_bench, write_json

    unknown = sorted(set(args.only or ()) - set(GOALS))
    if unknown:
        raise UserError(f"--only {', '.join(unknown)}: unknown; choose from {', '.join(GOALS)}")
    print("ratio            min / median / max (each A and B measured side by side, alternating)")
    record = run_bench(args.device, args.quick, only=args.only)
    if args.out:
        write_json(record, args.out)
        print(f"written to {args.out}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from sweep.results import query

    _print_frame(query(_existing_store(args.results), args.sql), args.format)
    return 0


def _existing_store(results: str) -> ResultsStore:
    from sweep.results import ResultsStore

    store = ResultsStore(results)
    if not store.exists():
        raise UserError(f"--results {results}: no results there yet (run 'sweep train' or 'sweep run')")
    return store


def _print_frame(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("(no rows)" if len(frame.columns) else "(ok)")
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
            print(frame.to_string(index=False))
