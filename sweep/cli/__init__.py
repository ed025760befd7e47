"""The `sweep` command: parses, calls, prints. User mistakes end in one line on stderr and exit 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sweep.cli.parser import build_parser
from sweep.errors import Interrupted, UserError

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def main(argv: Sequence[str] | None = None) -> int:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader that has gone away (`sweep query ... | head`) shows up here
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # what a shell reports for a writer stopped by SIGPIPE: quiet, like `yes | head`


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help into a closed pipe: the BrokenPipeError comes here, not at exit
        raise
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


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not complain a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture): nothing to quiet
        pass
