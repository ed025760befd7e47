"""Where Tune keeps a sweep's state and its trials' checkpoints: a local folder or a `pyarrow.fs` URI."""

from __future__ import annotations

import pyarrow.fs as pafs


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path in it of a local folder or a `pyarrow.fs` URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), root
