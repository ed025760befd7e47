"""The `sweep` command. Each subcommand is a thin layer over the public API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import pandas as pd

from sweep.errors import UserError

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

    def spec_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", help="the YAML spec")
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


def _query(args: argparse.Namespace) -> int:
    from sweep.results import ResultsStore, query

    store = ResultsStore(args.results)
    if not store.exists():
        raise UserError(f"--results {args.results}: no results there yet (run 'sweep train' or 'sweep run')")
    _print_frame(query(store, args.sql), args.format)
    return 0


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
