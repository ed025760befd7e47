"""The one-driver lease of a sweep: a small file in the results store, `_sweeps/<name>.lease`.

It names the driver that holds the sweep (an id, the host, the process, the command, since when) and a
count that every write of it bumps: its version. Liveness is never judged by comparing clocks of two hosts:
a lease is stale once its version has not changed for the term (`SPARSE_SWEEP_LEASE_TERM_S`, 60 s) as the
observer's own monotonic clock measures it, so a driver that finds a lease watches it for up to the term:
renewed meanwhile, the sweep is busy; unchanged, it is taken over. A lease whose process is provably gone
(the same machine by its boot id, the same pid namespace, and no process of that pid and start time) is
taken over at once. On a local disk every read-check-write runs under an exclusive `flock` on
`<lease>.lock`, so two drivers on one machine (or on an NFS mount with locks) never both hold it. On S3
(with boto3, the `s3` extra) every write is conditional (`store/conditional.py`): a lease is created only if
none exists and renewed or taken over only if it is still the one read, so of two drivers exactly one wins.
Other `pyarrow.fs` stores get neither: two drivers started within the same second could both win; the
README says so. Every call to the store runs under the store deadline (`store/deadline.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import pyarrow.fs as pafs

from sweep.errors import UserError
from sweep.store import conditional
from sweep.store.deadline import lease_term_s, store_deadline_s, store_named, within

RENEWALS_PER_TERM = 6  # a holder renews its lease this often within a term


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    host: str
    pid: int
    command: str
    since: float  # the holder's wall clock, shown to people and never compared
    renewed: float
    count: int = 0  # bumped by every write of the lease: its version
    process: str = ""  # the holder's process as this machine knows it (`process_identity`)

    def gone(self) -> bool:
        """Provably dead: a process of this very machine and pid namespace that is no longer there."""
        machine = _machine()
        if not machine or not self.process.startswith(f"{machine}/"):
            return False  # another machine, or one that cannot be told: only the term tells
        return process_identity(self.pid) != self.process

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"'sweep {self.command}' on {self.host} (pid {self.pid}) since {since}"


class SweepBusy(UserError):
    """Another driver that lives holds the sweep."""


class LeaseFile:
    """Acquire, renew and release one sweep's lease in a results store. `wall` is this host's clock, which
    only the lease's `since` and `renewed` (shown to people) come from; `term` defaults to the setting."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        base: str,
        sweep: str,
        wall: Callable[[], float] = time.time,
        term: float | None = None,
    ) -> None:
        self.fs, self.sweep, self.wall = fs, sweep, wall
        self.term = term or lease_term_s()
        self.path = f"{base}/_sweeps/{sweep}.lease"
        self.me = uuid.uuid4().hex
        s3 = isinstance(fs, pafs.S3FileSystem)
        self.object = conditional.ConditionalObject(self.path) if s3 and conditional.available() else None
        self.store = store_named(f"s3://{base}" if s3 else base)
        self.proof = 0.0  # this process's monotonic clock when its last write of the lease that landed began

    @property
    def guarantee(self) -> str:
        """What keeps two drivers of a sweep apart on this store."""
        if self.object is not None:
            return "conditional writes (compare-and-swap on the lease's ETag)"
        if isinstance(self.fs, pafs.LocalFileSystem):
            return "an exclusive flock (on NFS, only where the mount has working locks)"
        return "none: this store has no conditional writes, so two drivers started together could both run"

    def read(self) -> LeaseHolder | None:
        return self._read()[0]

    def acquire(
        self, command: str, waiting: Callable[[LeaseHolder, float], None] | None = None
    ) -> LeaseHolder | None:
        """Take the lease; return the lease it replaced (of a driver gone or stalled), if any. A lease of
        another driver is watched for up to the term (`waiting` is told once): renewed meanwhile, this
        raises `SweepBusy`; unchanged, it is taken over."""
        watched, since = None, 0.0
        while True:
            with self._locked():
                current, version, body = self._read()
                stale = watched == body and time.monotonic() - since >= self.term
                if current is None or current.holder == self.me or current.gone() or stale:
                    if not self._write(self._mine(command, current), version):
                        winner = self.read()  # another driver wrote it between our read and our write
                        raise (
                            self._busy(winner) if winner else SweepBusy(f"sweep {self.sweep}: lost the lease")
                        )
                    return current
            if watched is None:
                watched, since = body, time.monotonic()
                if waiting is not None:
                    waiting(current, self.term)
            elif body != watched:
                raise self._busy(current)
            time.sleep(min(1.0, self.term / (2 * RENEWALS_PER_TERM)))

    def renew(self) -> bool:
        """Renew the lease; False when another driver has taken it over (this one must stop)."""
        with self._locked():
            current, version, _ = self._read()
            if current is None or current.holder != self.me:
                return False
            return self._write(replace(current, renewed=self.wall(), count=current.count + 1), version)

    def release(self) -> None:
        with self._locked():
            current, version, _ = self._read()
            if current is None or current.holder != self.me:
                return
            if self.object is not None:
                within(store_deadline_s(), self.store, f"deleting {self.path}", self.object.delete, version)
            else:
                self.fs.delete_file(self.path)

    def _mine(self, command: str, replaced: LeaseHolder | None) -> LeaseHolder:
        now, count = self.wall(), replaced.count + 1 if replaced else 0
        pid = os.getpid()
        return LeaseHolder(
            self.me, socket.gethostname(), pid, command, now, now, count, process_identity(pid)
        )

    def _busy(self, current: LeaseHolder) -> SweepBusy:
        return SweepBusy(
            f"sweep {self.sweep} is being run by another driver: {current.describe()}; it renewed its lease "
            "while this one watched. Wait for it to end, or stop that process (a lease not renewed for "
            f"{self.term:.0f}s is taken over, and at once when its process on this machine is gone)"
        )

    def _read(self) -> tuple[LeaseHolder | None, str | None, bytes | None]:
        """The lease, its version (an ETag on S3) and its bytes, each None when there is none."""
        return within(store_deadline_s(), self.store, f"reading {self.path}", self._fetch)

    def _fetch(self) -> tuple[LeaseHolder | None, str | None, bytes | None]:
        try:
            if self.object is not None:
                found = self.object.get()
                if found is None:
                    return None, None, None
                body, version = found
            else:
                with self.fs.open_input_stream(self.path) as stream:
                    body, version = stream.readall(), None
        except FileNotFoundError:
            return None, None, None
        try:
            return LeaseHolder(**json.loads(body)), version, body
        except (ValueError, TypeError):  # a half-written or foreign file: no live driver vouches for it
            return None, version, body

    def _write(self, holder: LeaseHolder, version: str | None) -> bool:
        """Write the lease if it is still as read (S3); False when another driver wrote it first."""
        began = time.monotonic()
        written = within(store_deadline_s(), self.store, f"writing {self.path}", self._put, holder, version)
        if written:
            self.proof = began
        return written

    def _put(self, holder: LeaseHolder, version: str | None) -> bool:
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


def process_identity(pid: int) -> str:
    """`<boot id>/<pid namespace>/<pid>/<start time>` of a live process of this machine; "" when there is no
    such process (a zombie counts as none) or this machine cannot say."""
    machine = _machine()
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    if not machine or fields[0] == "Z":
        return ""
    return f"{machine}/{pid}/{fields[19]}"


def _machine() -> str:
    """This boot of this machine and this pid namespace; "" where /proc cannot tell."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""
