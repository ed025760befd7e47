"""A search's Optuna journal in a results store away (S3, GCS): Optuna appends to a local working copy, and
the store keeps the journal as parts, each the whole lines appended since the part before.

A part's name says which bytes of the journal it holds and a hash of the journal up to its end:
`_sweeps/<sweep>.optuna/<generation>/<start>-<end>-<hash>.part`. A save uploads only the new lines, as one
part; once the journal has doubled since its generation began, the whole journal goes up as the first part of
a new generation and the older generations are deleted (one request for all their parts), so the bytes sent
stay under three times the journal's size. A working copy is current when its bytes up to the store's end
hash as the last part says: it is judged by content, never by size, and only the parts it lacks are fetched.
Every line is checked when the journal is opened: a damaged one is one error naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow.fs as pafs

from sweep.errors import ResultsError

T = TypeVar("T")
JOURNALS = "/tmp/sparse-sweep-journals"  # remote stores' journal copies: one path on every machine
PART = re.compile(r"^(\d{16})-(\d{16})-([0-9a-f]{16})\.part$")


@dataclass(frozen=True)
class Part:
    start: int
    end: int
    digest: str
    path: str


class RemoteJournal:
    """One sweep's journal in a store away, its parts in `<sweep>.optuna/`, and its working copy `local`."""

    def __init__(self, fs: pafs.FileSystem, sweep: str, local: str) -> None:
        self.fs, self.folder, self.local = fs, f"{sweep}.optuna", local
        self.legacy = f"{sweep}.optuna.log"  # the whole journal in one file, as older versions kept it
        self._hashed, self._hash = 0, hashlib.sha256()  # how much of the working copy is hashed, and the hash
        self._old: list[str] = []  # the generations' folders the newest replaces
        self._chain: list[Part] | None = None  # the store's parts as this process last saw or made them

    def fetch(self) -> None:
        """Bring the working copy up to the store's journal (lines it has beyond it are kept)."""
        parts = self._parts()
        have = _read(self.local)
        running, matched = hashlib.sha256(), 0
        for part in parts:  # how far the working copy holds what the store holds
            running.update(have[part.start : part.end])
            if len(have) < part.end or _digest_of(running) != part.digest:
                break
            matched = part.end
        if parts and matched < parts[-1].end:
            with ThreadPoolExecutor(max_workers=16) as pool:  # a request each, side by side
                lacking = list(pool.map(self._get, [p.path for p in parts if p.start >= matched]))
            _write(self.local, have[:matched] + b"".join(lacking))
        elif not parts and self.fs.get_file_info(self.legacy).type == pafs.FileType.File:
            older = self._get(self.legacy)  # a journal kept whole, as older versions did
            if not have.startswith(older):
                _write(self.local, older)
        self._hashed, self._hash, self._chain = 0, hashlib.sha256(), None

    def save(self) -> None:
        """Upload the whole lines the working copy has beyond the store's end, as one part (or the whole
        journal as a new generation, once it has doubled since its generation began)."""
        parts = self._chain if self._chain is not None else self._parts()
        if parts and not self._extends(parts[-1]):
            self._old.append(_folder(parts[0]))  # the store's journal is not this one's start: replace it
            parts, self._hashed, self._hash = [], 0, hashlib.sha256()
        end = parts[-1].end if parts else 0
        with open(self.local, "rb") as handle:
            handle.seek(end)
            new = handle.read()
        new = new[: new.rfind(b"\n") + 1]  # a line Optuna is still appending goes up with the next save
        if not new:
            return
        self._hash.update(new)
        self._hashed = end + len(new)
        if parts and self._hashed < 2 * parts[0].end:
            self._chain = [*parts, self._put(_folder(parts[0]), end, new)]
            return
        with open(self.local, "rb") as handle:
            whole = handle.read(self._hashed)
        generation = f"{self.folder}/{self._hashed:016d}-{_digest_of(self._hash)}"
        self._chain = [self._put(generation, 0, whole)]
        for folder in {*self._old, *(_folder(part) for part in parts[:1])} - {generation}:
            self._call(self.fs.delete_dir, folder)  # the whole journal is in the new generation
        self._old = []

    def discard(self) -> None:
        if self._listing():
            self._call(self.fs.delete_dir, self.folder)
        if self.fs.get_file_info(self.legacy).type == pafs.FileType.File:
            self._delete(self.legacy)
        self._hashed, self._hash, self._chain = 0, hashlib.sha256(), None

    def _extends(self, last: Part) -> bool:
        """Whether the working copy's bytes up to the store's end hash as the store's last part says (hashing
        on from where the last save stopped, so that a save reads only the new bytes)."""
        if self._hashed > last.end:
            self._hashed, self._hash = 0, hashlib.sha256()
        with open(self.local, "rb") as handle:
            handle.seek(self._hashed)
            more = handle.read(last.end - self._hashed)
        self._hash.update(more)
        self._hashed += len(more)
        return self._hashed == last.end and _digest_of(self._hash) == last.digest

    def _parts(self) -> list[Part]:
        """The newest generation's parts from the journal's start, each beginning where the one before ends;
        the older generations' folders are noted, to delete."""
        generations: dict[str, dict[int, Part]] = {}
        for info in self._listing():
            if (m := _named(info)) is not None:
                folder = info.path.rpartition("/")[0]
                generations.setdefault(folder, {})[int(m[1])] = Part(int(m[1]), int(m[2]), m[3], info.path)
        newest = max(generations, key=lambda folder: folder.rpartition("/")[2], default=None)
        self._old = sorted(set(generations) - {newest})
        chain: list[Part] = []
        while newest and (part := generations[newest].get(chain[-1].end if chain else 0)):
            chain.append(part)
        return chain

    def _listing(self) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.folder, allow_not_found=True, recursive=True)
        return self._call(self.fs.get_file_info, selector)

    def _put(self, generation: str, start: int, data: bytes) -> Part:
        part = Part(start, start + len(data), _digest_of(self._hash), "")
        path = f"{generation}/{part.start:016d}-{part.end:016d}-{part.digest}.part"
        with self._call(self.fs.open_output_stream, path) as out:
            out.write(data)
        return Part(part.start, part.end, part.digest, path)

    def _get(self, path: str) -> bytes:
        with self._call(self.fs.open_input_stream, path) as stream:
            return stream.readall()

    def _delete(self, path: str) -> None:
        self._call(self.fs.delete_file, path)

    def _call(self, action: Callable[..., T], *args: object) -> T:
        try:
            return action(*args)
        except OSError as exc:
            reason = exc.strerror or str(exc).splitlines()[0]
            raise ResultsError(f"the Optuna journal in {self.folder}: {reason}") from None


def check_lines(path: str, what: str) -> None:
    """Every whole line of the journal at `path` is a record Optuna can read; else one error naming `what`
    (the journal as the user knows it) and the line. A last line without its end is Optuna's to skip."""
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except ValueError as exc:
            reason = getattr(exc, "msg", None) or str(exc).splitlines()[0]
            raise ResultsError(
                f"{what} line {number} is not a journal record ({reason}); delete the journal and the "
                "search's study is rebuilt from the sweep's finished trials"
            ) from None


def working_copy(root: str, sweep: str) -> str:
    """This machine's working copy of a remote store's journal: the same path on every machine."""
    store = hashlib.sha256(root.encode()).hexdigest()[:16]
    return os.path.join(os.environ.get("SPARSE_SWEEP_JOURNALS") or JOURNALS, store, f"{sweep}.optuna.log")


def _folder(part: Part) -> str:
    return part.path.rpartition("/")[0]


def _named(info: pafs.FileInfo) -> re.Match | None:
    return PART.match(info.base_name) if info.type == pafs.FileType.File else None


def _digest_of(running: Any) -> str:
    return running.copy().hexdigest()[:16]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def _write(path: str, data: bytes) -> None:
    """Replace the working copy whole: a reader sees the old file or the new, never half of one."""
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
