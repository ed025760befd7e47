"""The `sweep` command line: every subcommand, its arguments and its help."""

from __future__ import annotations

import argparse

from sweep.cli import commands, reading
from sweep.cli.export import add_export
from sweep.cli.tracking import add_track_option

DEFAULT_RESULTS = "results"


def build_parser() -> argparse.ArgumentParser:
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

    def no_compact(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-compact",
            action="store_true",
            help="leave one file per trial and table at the end (compact later with 'sweep compact')",
        )

    def results_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--results",
            default=DEFAULT_RESULTS,
            metavar="DIR",
            help="results folder or pyarrow.fs URI (default: results)",
        )

    p = command("train", commands.train, "Train one trial of a spec in this process (no Ray).")
    spec_args(p)
    results_arg(p)
    p.add_argument("--force", action="store_true", help="train again even if the trial is already done")

    p = command("run", commands.run, "Run a sweep (single, snas, sc_sdc or grid) on Ray Tune.")
    spec_args(p, optional=True)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="say what the spec would run (trials, those done, an estimate of the time) and start nothing",
    )
    no_compact(p)
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
    add_track_option(p)

    p = command("submit", commands.submit, "Submit a sweep as a Ray job to a remote cluster.")
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
    p.add_argument(
        "--forward-credentials",
        action="store_true",
        help="send this shell's AWS variables (access key, secret, session token, endpoint, region) to the "
        "cluster as the job's environment; anyone who can reach the cluster's dashboard or job server (ray "
        "job list) or read its nodes' Ray temp folders (job logs, runtime_env_agent.log) can then read them. "
        "Without it the nodes use their own credentials (an instance role, a service account, or the "
        "environment 'ray start' ran with)",
    )

    p = command("resume", commands.resume, "Continue an interrupted sweep where it stopped.")
    no_compact(p)
    p.add_argument("name", help="the sweep's name")
    results_arg(p)
    p.add_argument("--address", default=None, help="as for run")
    add_track_option(p)

    p = command("report", reading.report, "Write a sweep's figures and report.md from its tables.")
    p.add_argument("name", help="the sweep's name")
    results_arg(p)
    p.add_argument("--out", metavar="DIR", help="where to write (default: <results>/reports/<name>)")

    for name, help_text in (
        ("status", "The sweeps under a results folder, or one sweep in detail."),
        ("list", "The sweeps under a results folder (same as status with no name)."),
    ):
        p = command(name, reading.status, help_text)
        if name == "status":
            p.add_argument("name", nargs="?", help="a sweep's name, for its details")
        else:
            p.set_defaults(name=None)
        results_arg(p)

    p = command(
        "bench", reading.bench, "Measure the trainer and the sweep layer against hand-written baselines."
    )
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (about a minute)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", metavar="FILE.json", help="also write the figures as JSON")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these comparisons")

    p = command("query", reading.query, "Run DuckDB SQL over the tables trials, epochs and layers.")
    p.add_argument("sql")
    results_arg(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")

    add_export(command, results_arg)

    p = command("compact", reading.compact, "Rewrite sweeps' per-trial files into a few large ones.")
    p.add_argument("name", nargs="?", help="a sweep's name (default: every sweep under the results)")
    p.add_argument(
        "--repair",
        action="store_true",
        help="rebuild a damaged or missing _compaction.json from the compacted files' own metadata "
        "(each trial's rows once, from its newest file), then compact",
    )
    results_arg(p)
    return parser
