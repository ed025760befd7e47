"""W&B's offline runs read back from their files: each run's `.wandb` transaction log (a LevelDB-style log of
W&B's own protobuf records, after a 7-byte `:W&B` header), as what a later `wandb sync` would upload."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BLOCK, HEADER = 32768, 7  # the log's block size, and the size of the file's header and of each record's
FULL, LAST = 1, 4  # a record whole, and the last piece of one split across blocks


@dataclass
class OfflineRun:
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, object] = field(default_factory=dict)
    history: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> metric -> value
    summary: dict[str, object] = field(default_factory=dict)
    exit_code: int | None = None


def records(path: Path) -> Iterator[object]:
    """The protobuf records of one `.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    position, pieces = HEADER, b""
    while position + HEADER <= len(data):
        if (left := BLOCK - position % BLOCK) < HEADER:  # a block's trailer: too short for a record
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        pieces += data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def read_run(folder: Path) -> OfflineRun:
    """An offline run folder (`offline-run-<time>-<id>`) as the run it holds."""
    (log,) = folder.glob("run-*.wandb")
    run = OfflineRun()
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found = record.run
            run.run_id, run.name, run.group, run.job_type = (
                found.run_id, found.display_name, found.run_group, found.job_type,
            )  # fmt: skip
            run.tags = list(found.tags)
            run.config |= {_key(item): json.loads(item.value_json) for item in found.config.update}
        elif kind == "config":
            run.config |= {_key(item): json.loads(item.value_json) for item in record.config.update}
        elif kind == "history":
            items = {_key(item): json.loads(item.value_json) for item in record.history.item}
            run.history[record.history.step.num] = {k: v for k, v in items.items() if not k.startswith("_")}
        elif kind == "summary":
            run.summary |= {_key(item): json.loads(item.value_json) for item in record.summary.update}
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(folder: Path) -> dict[str, OfflineRun]:
    """Every offline run under a `wandb` folder, by its run id (a run written twice fails here). Read once
    W&B's service has stopped: `finish` returns once the service has the run's last record, and the service
    writes and closes the run's log after that (at the latest when `sweep export`'s process ends)."""
    import wandb

    wandb.teardown()
    found: dict[str, OfflineRun] = {}
    for run_folder in sorted(folder.glob("offline-run-*")):
        run = read_run(run_folder)
        assert run.run_id not in found, f"two offline runs of {run.run_id}"
        found[run.run_id] = run
    return found


def _key(item: object) -> str:
    """An item's name: W&B writes it as `key` or as the one-part `nested_key`."""
    return item.key or ".".join(item.nested_key)
