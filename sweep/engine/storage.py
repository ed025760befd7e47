"""Where Tune keeps a sweep's state and its trials' checkpoints: a local folder or a `pyarrow.fs` URI."""

from __future__ import annotations

import dataclasses

import pyarrow.fs as pafs

from sweep.spec import SweepSpec
from sweep.store.location import is_uri, open_filesystem, settle


def settled_spec(spec: SweepSpec) -> SweepSpec:
    """The spec with `ray.storage` as a plain URI: its query's settings are this process's AWS variables
    now (its credentials too), so neither the sweep's state nor Tune's holds a credential."""
    storage = settle(spec.ray.storage, "ray.storage") if spec.ray.storage else None
    if storage == spec.ray.storage:
        return spec
    return dataclasses.replace(spec, ray=dataclasses.replace(spec.ray, storage=storage))


def tune_location(root: str) -> tuple[str, pafs.FileSystem | None]:
    """The `storage_path` and `storage_filesystem` Tune takes for a local folder or a URI: on an object
    store, our filesystem (timeouts, bounded attempts, the endpoint of the AWS settings) and a path in it."""
    if not is_uri(root):
        return root, None
    fs, path = open_filesystem(root)
    return path, fs
