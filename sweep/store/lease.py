"""The one-driver lease of a sweep: a small file in the results store, `_sweeps/<name>.lease`.

It names the driver that holds the sweep (an id, the host, the process, the command, since when) and when it
was last renewed. A lease is alive while it is renewed within `LEASE_TTL_S` and, on the same host, while its
process lives; a dead driver's lease is taken over. On a local disk every read-check-write runs under an
exclusive `flock` on `<lease>.lock`, so two drivers on one machine (or on an NFS mount with locks) never
both hold it. On S3 (with boto3, the `s3` extra) every write is conditional (`store/conditional.py`): a
lease is created only if none exists and renewed or taken over only if it is still the one read, so of
two drivers exactly one wins. Other `pyarrow.fs` stores get neither: two drivers started within the same
second could both win; the README says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow.fs as pafs

from sweep.errors import UserError
from sweep.store import conditional

LEASE_TTL_S = 60.0  # a lease not renewed for this long is dead, whatever host it names
RENEW_EVERY_S = 10.0


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    host: str
    pid: int
    command: str
    since: float
    renewed: float

    def alive(self, now: float | None = None) -> bool:
        if (now or time.time()) - self.renewed > LEASE_TTL_S:
            return False
        return _process_alive(self.pid) if self.host == socket.gethostname() else True

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"'sweep {self.command}' on {self.host} (pid {self.pid}) since {since}"


class SweepBusy(UserError):
    """Another driver that lives holds the sweep."""


class LeaseFile:
    """Acquire, renew and release one sweep's lease in a results store."""

    def __init__(self, fs: pafs.FileSystem, base: str, sweep: str) -> None:
        self.fs, self.sweep = fs, sweep
        self.path = f"{base}/_sweeps/{sweep}.lease"
        self.me = uuid.uuid4().hex
        s3 = isinstance(fs, pafs.S3FileSystem) and conditional.available()
        self.object = conditional.ConditionalObject(self.path) if s3 else None

    def read(self) -> LeaseHolder | None:
        return self._read()[0]

    def acquire(self, command: str) -> LeaseHolder | None:
        """Take the lease; return the dead driver's lease it replaced, if any. Raises `SweepBusy`."""
        with self._locked():
            current, version = self._read()
            if current is not None and current.holder != self.me and current.alive():
                raise self._busy(current)
            now = time.time()
            if not self._write(
                LeaseHolder(self.me, socket.gethostname(), os.getpid(), command, now, now), version
            ):
                winner = self.read()  # another driver wrote it between our read and our write
                raise (
                    self._busy(winner)
                    if winner is not None
                    else SweepBusy(f"sweep {self.sweep}: lost the lease")
                )
            return current

    def renew(self) -> bool:
        """Renew the lease; False when another driver has taken it over (this one must stop)."""
        with self._locked():
            current, version = self._read()
            if current is None or current.holder != self.me:
                return False
            return self._write(LeaseHolder(**{**asdict(current), "renewed": time.time()}), version)

    def release(self) -> None:
        with self._locked():
            current, version = self._read()
            if current is None or current.holder != self.me:
                return
            if self.object is not None:
                self.object.delete(version)
            else:
                self.fs.delete_file(self.path)

    def _busy(self, current: LeaseHolder) -> SweepBusy:
        return SweepBusy(
            f"sweep {self.sweep} is being run by another driver: {current.describe()}, last seen "
            f"{max(0.0, time.time() - current.renewed):.0f}s ago; wait for it to end, or stop that process "
            f"(the lease of a driver that died is taken over once it is {LEASE_TTL_S:.0f}s old, "
            "and at once on the same host)"
        )

    def _read(self) -> tuple[LeaseHolder | None, str | None]:
        """The lease and its version (an ETag on S3), each None when there is none."""
        try:
            if self.object is not None:
                found = self.object.get()
                if found is None:
                    return None, None
                body, version = found
            else:
                with self.fs.open_input_stream(self.path) as stream:
                    body, version = stream.readall(), None
        except FileNotFoundError:
            return None, None
        try:
            return LeaseHolder(**json.loads(body)), version
        except (ValueError, TypeError):  # a half-written or foreign file: no live driver vouches for it
            return None, version

    def _write(self, holder: LeaseHolder, version: str | None) -> bool:
        """Write the lease if it is still as read (S3); False when another driver wrote it first."""
        body = json.dumps(asdict(holder)).encode()
        if self.object is not None:
            return self.object.put(body, version) is not None
        folder, _, name = self.path.rpartition("/")
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        self.fs.create_dir(folder, recursive=True)
        with self.fs.open_output_stream(temporary) as out:
            out.write(body)
        self.fs.move(temporary, self.path)
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if not isinstance(self.fs, pafs.LocalFileSystem):
            yield
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        descriptor = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process that nobody has reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
