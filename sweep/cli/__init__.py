"""The `sweep` command: parses, calls, prints. User mistakes end in one line on stderr and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sweep.cli.output import QuietPipe
from sweep.cli.parser import build_parser
from sweep.errors import Interrupted, UserError
from sweep.ray_env import set_ray_environment
from sweep.store.location import is_uri, settle, store_failure


def main(argv: Sequence[str] | None = None) -> int:
    set_ray_environment(command=True)
    original, sys.stdout = sys.stdout, QuietPipe(sys.stdout)
    try:
        code = _run(argv)
        sys.stdout.flush()
        return code
    finally:
        sys.stdout = original


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help into a closed pipe: quiet here, not a complaint at exit
        raise
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "results", None) is not None:  # an S3 query's settings go to the AWS variables
            args.results = settle(str(args.results))
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
    except OSError as exc:  # a results store that fails a request (an S3 endpoint away, a refused key)
        results = getattr(args, "results", None)
        if results is None or not is_uri(str(results)):
            raise
        print(f"sweep: error: results {settle(str(results))}: {store_failure(exc)}", file=sys.stderr)
        return 2
