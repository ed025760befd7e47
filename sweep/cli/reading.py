"""The `sweep` subcommands that read what sweeps wrote: report, status, query, compact; and bench."""

from __future__ import annotations

import argparse
import shlex

from sweep.cli.commands import _check_name, _existing_store
from sweep.cli.output import print_frame
from sweep.errors import UserError


def report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweep.report import write_report
    from sweep.store import ResultsStore

    _check_name(args.name)
    store = ResultsStore(args.results)
    local = "://" not in args.results
    out = Path(args.out) if args.out else (Path(args.results) if local else Path(".")) / "reports" / args.name
    path = write_report(store, args.name, out)
    print(f"report of {args.name}: {shlex.quote(str(path))}")
    return 0


def status(args: argparse.Namespace) -> int:
    from sweep.store import ResultsStore
    from sweep.store.summary import history_lines, leaderboard, status_data, status_table, sweep_metric

    if args.name:
        _check_name(args.name)
    store = ResultsStore(args.results)
    rows, states = status_data(store, args.name)
    if not rows:
        _existing_store(args.results)  # says why there is nothing
    if args.name and not rows.get(args.name) and args.name not in states:
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"no sweep named {args.name!r} in {args.results} (sweeps there: {known})")
    print_frame(status_table(rows, states), "table")
    if args.name:
        state = states.get(args.name)
        spec = state.spec if state else {}
        kind = spec.get("kind") or (rows[args.name][0]["kind"] if rows[args.name] else "single")
        metric = sweep_metric(spec, kind)
        print(f"\nbest trials (by {metric}):")
        print_frame(leaderboard(rows[args.name], metric, top=5), "table")
        history = history_lines(state) if state else []
        if history:
            print("\nruns (0: the first; each growth after it):")
            print("\n".join(history))
    return 0


def bench(args: argparse.Namespace) -> int:
    from sweep.bench import GOALS, run_bench, write_json

    unknown = sorted(set(args.only or ()) - set(GOALS))
    if unknown:
        raise UserError(f"--only {', '.join(unknown)}: unknown; choose from {', '.join(GOALS)}")
    print("ratio                min / median / max (each A and B measured side by side, alternating)")
    record = run_bench(args.device, args.quick, only=args.only)
    if args.out:
        write_json(record, args.out)
        print(f"written to {shlex.quote(args.out)}")
    return 0


def query(args: argparse.Namespace) -> int:
    from sweep.store import query

    print_frame(query(_existing_store(args.results), args.sql), args.format)
    return 0


def compact(args: argparse.Namespace) -> int:
    from sweep.store.compaction import compact, compaction_line
    from sweep.store.lease import driver_lease
    from sweep.store.repair import repair, repair_line

    store = _existing_store(args.results)
    names = [args.name] if args.name else store.sweeps()
    if args.name and args.name not in store.sweeps():
        known = ", ".join(store.sweeps()) or "none"
        raise UserError(f"no sweep named {args.name!r} in {args.results} (sweeps there: {known})")
    for name in names:
        with driver_lease(store, name, "compact"):  # no driver writes while its files are swapped
            if args.repair:
                print(repair_line(name, repair(store, name)))
                continue
            store.check_readable(name)
            print(compaction_line(name, compact(store, name)))
    return 0
