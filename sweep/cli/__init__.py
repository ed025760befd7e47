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
    parser = build_parser()
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
