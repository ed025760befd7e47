"""Check that this environment holds the lock's versions: every package the lock names for this Python and
platform is installed at the lock's version. Usage: python .ci/lock_matches.py requirements.lock"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def locked(path: str) -> dict[str, str]:
    """The lock's pins that apply here (their markers evaluated for this interpreter)."""
    pins = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def main(path: str) -> int:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = [
        f"{name}: locked {version}, installed {installed.get(name, 'nothing')}"
        for name, version in sorted(locked(path).items())
        if installed.get(name) != version
    ]
    for line in wrong:
        print(line, file=sys.stderr)
    print(f"{path}: {len(locked(path)) - len(wrong)} of {len(locked(path))} packages as locked")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
