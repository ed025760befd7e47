"""Port checks for cluster/local_head.sh (Linux, standard library only).

python head_ports.py free PORT...        exit 1 naming the first port something already listens on
python head_ports.py pick N              print N free ports, below the ephemeral range
python head_ports.py owner PGID PORT...  exit 0 when a process of process group PGID listens on every
                                         PORT; else print "PORT PID" for each port held by another
                                         process (PID "-" when nothing listens there yet) and exit 1
"""

from __future__ import annotations

import errno
import os
import random
import socket
import sys
from pathlib import Path

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp
PICK_FROM = 20000  # above Ray's worker ports (10002 to 19999 unless set otherwise)


def busy(port: int) -> bool:
    """Whether something listens on `port` on any address (a bind to the wildcard address fails then)."""
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "busy"
                probe.bind((address, port))
        except OSError as exc:
            if family == socket.AF_INET6 and exc.errno == errno.EAFNOSUPPORT:  # no IPv6 here
                continue
            return True
    return False


def pick(count: int) -> list[int]:
    """Free ports, all distinct, from below the kernel's ephemeral range: a port the kernel hands out (a bind
    to port 0) is one it also gives the local end of outgoing connections, so between the pick and the node's
    bind a gRPC client of Ray's could take it."""
    low = ephemeral_range()[0]
    candidates = list(range(PICK_FROM, low)) if low - PICK_FROM >= 10 * count else []
    random.shuffle(candidates)
    chosen = [port for port in candidates[: 50 * count] if not busy(port)][:count]
    if len(chosen) < count:  # an ephemeral range that starts low: as the kernel chooses
        return _kernel_ports(count)
    return chosen


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default when it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _kernel_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def listeners(port: int) -> set[str]:
    """The socket inodes listening on `port`, IPv4 and IPv6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holders(inodes: set[str]) -> set[int]:
    """The processes that hold any of these sockets open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                pids.add(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def owner_report(pgid: int, ports: list[int]) -> list[str]:
    """One "PORT PID" line per port not held by process group `pgid` (empty when all are)."""
    problems = []
    for port in ports:
        pids = holders(listeners(port))
        groups = {_pgid(pid) for pid in pids}
        if pgid not in groups:
            others = sorted(pid for pid in pids if _pgid(pid) != pgid)
            problems.append(f"{port} {others[0] if others else '-'}")
    return problems


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "free":
        taken = [port for port in map(int, args) if busy(port)]
        if taken:
            print(taken[0])
            return 1
        return 0
    if command == "pick":
        print(" ".join(map(str, pick(int(args[0])))))
        return 0
    if command == "owner":
        problems = owner_report(int(args[0]), [int(p) for p in args[1:]])
        print("\n".join(problems))
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
