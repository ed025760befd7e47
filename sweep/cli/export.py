"""`sweep export NAME --to mlflow|tensorboard|wandb`: a sweep's trials, from its tables, as tracker runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

TRACKERS = ("mlflow", "tensorboard", "wandb")


def export(args: argparse.Namespace) -> int:
    from sweep.cli.commands import _check_name, _existing_store
    from sweep.trackers.export import export_sweep

    _check_name(args.name)
    store = _existing_store(args.results)
    print(export_sweep(store, args.name, args.to, args.uri, args.online))
    return 0


def add_export(command: Callable, results_arg: Callable) -> None:
    """The subcommand, with the parser's own helpers."""
    p = command("export", export, "Export a sweep's trials from its tables as an experiment tracker's runs.")
    p.add_argument("name", help="the sweep's name")
    p.add_argument("--to", choices=TRACKERS, required=True, help="the tracker")
    p.add_argument(
        "--uri",
        help="mlflow: a tracking URI or server (default: sqlite mlflow.db beside the results, or in this "
        "folder for results in a bucket); tensorboard: the log folder (default: <results>/tensorboard); "
        "wandb: the folder that holds its wandb/ folder of runs (default: the results folder, or this "
        "folder for results in a bucket)",
    )
    p.add_argument(
        "--online", action="store_true", help="wandb: log the runs to the W&B server (default: offline files)"
    )
    results_arg(p)
