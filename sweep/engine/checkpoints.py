"""Keeping a trial's checkpoints few: the latest two, pruned by the driver as each new one arrives.

Tune's own `CheckpointConfig(num_to_keep=...)` would also force a snapshot of the whole experiment's state
after every checkpoint of any trial (so that the state never names a deleted checkpoint), which costs a
sweep of thousands of trials more than its training. The trainable restores from the newest checkpoint a
trial has in its own folder (`worker.latest_state`), so this pruning needs no snapshot.
"""

from __future__ import annotations

from typing import Any

import pyarrow.fs as pafs
from ray import tune

KEEP = 2  # the newest, and the one before it (which a snapshot taken in between may name)


class CheckpointPruner(tune.Callback):
    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        fs, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
        folder = path.rpartition("/")[0]
        try:
            siblings = sorted(
                info.path
                for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
                if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
            )
            for old in siblings[:-KEEP]:
                if old != path:
                    fs.delete_dir(old)
        except OSError:
            pass  # pruning is housekeeping: the next checkpoint tries again
