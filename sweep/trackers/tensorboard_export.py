"""A sweep's runs as TensorBoard event files: `<logdir>/<sweep>/<trial_key>/`, one run folder per trial, so
`tensorboard --logdir <logdir>/<sweep>` shows the sweep's trials side by side. Each run holds its epochs as
scalars at step = epoch (the layers' terms as `layer/<module>/<metric>`), its final metrics as
`final/<metric>` at its last step, and its settings and tags in the HParams plugin's table, whose columns
are the same in every run (the sweep's parameters, typed across its trials, and its final metrics).

Exporting again gives the same runs: each trial is written into a fresh folder beside the others and then
renamed into place, so a run is never written twice into one folder and a reader never sees half of one.
Run folders this module wrote for trials that are no longer in the tables are removed.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from sweep.errors import UserError
from sweep.store.location import is_uri, local_folder
from sweep.trackers.runs import TrialRun

MARKER = ".sweep-export.json"  # in each run folder this module wrote: what it holds
INSTALL = "pip install 'sparse-sweep[tensorboard]'"
BOOLS = {"true": True, "false": False}
HIDDEN_TAGS = ("sweep", "trial_key")  # the run's folder already says them
STATUS = {"done": "STATUS_SUCCESS", "stopped": "STATUS_SUCCESS", "error": "STATUS_FAILURE"}
STATUS |= {"diverged": "STATUS_FAILURE", "running": "STATUS_RUNNING"}
Value = bool | float | str  # an HParams value, typed as its column is
_DATA_TYPE = {bool: "DATA_TYPE_BOOL", float: "DATA_TYPE_FLOAT64", str: "DATA_TYPE_STRING"}
_FIELD = {bool: "bool_value", float: "number_value", str: "string_value"}


def default_logdir(results_root: str) -> Path:
    """Where the runs go when no folder is given: `<results>/tensorboard` for a local results folder,
    `./tensorboard` when the results are in a bucket."""
    return (local_folder(results_root) or Path()) / "tensorboard"


def export_tensorboard(
    runs: Sequence[TrialRun],
    sweep: str,
    logdir: str | Path,
    echo: Callable[[str], object] = print,
    whole_sweep: Sequence[TrialRun] | None = None,
) -> Path:
    """Write every run of the sweep under `<logdir>/<sweep>/` and return that folder; the folders of trials
    not among the runs are removed. A live round writes some of the sweep's runs: `whole_sweep` holds all
    of them so far, whose HParams columns the written runs share, and no folder is removed. A folder that
    cannot be written, or TensorBoard not installed, is one line."""
    try:
        from tensorboard.plugins.hparams import api_pb2  # noqa: F401  (the extra, before any file)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError(f"exporting to TensorBoard needs the tensorboard package: {INSTALL}") from None
    if is_uri(str(logdir)):
        raise UserError(f"tensorboard log folder {logdir}: give a local folder (TensorBoard reads files)")
    root = Path(logdir)
    folder = root / sweep
    staging = root / f".export-{sweep}-{uuid.uuid4().hex[:12]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        table = _hparams_table(runs if whole_sweep is None else whole_sweep)
        replaced = 0
        for run in runs:
            _write_run(run, staging / run.trial_key, table)
            replaced += _swap(staging / run.trial_key, folder / run.trial_key, staging)
        removed = _remove_stale(folder, {run.trial_key for run in runs}) if whole_sweep is None else []
    except OSError as exc:
        where = exc.filename if exc.filename else root
        raise UserError(f"tensorboard log folder {root} cannot be written: {where}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if replaced:
        echo(f"tensorboard: replaced the runs of {replaced} trials exported before to {folder}")
    if removed:
        echo(f"tensorboard: removed the runs of {len(removed)} trials no longer in the tables: {removed}")
    return folder


# ----------------------------------------------------------------------------------------- the HParams table
class _Table:
    """The sweep's HParams columns: each parameter's type and values across the trials, its final metrics."""

    def __init__(self, values: dict[str, list[Value | None]], metrics: list[str]) -> None:
        self.values, self.metrics = values, metrics
        self.kinds = {name: _kind(found) for name, found in values.items()}

    def row(self, run: TrialRun) -> dict[str, Value]:
        """The run's values, typed as their column is (a missing or null value is left out)."""
        mine = _hparams(run)
        typed = {name: _typed(mine.get(name), kind) for name, kind in self.kinds.items()}
        return {name: value for name, value in typed.items() if value is not None}

    @cached_property
    def experiment(self) -> Any:
        """The plugin's `Experiment`: the columns, the same in every run."""
        from tensorboard.plugins.hparams import api_pb2

        infos = []
        for name, values in self.values.items():
            kind = self.kinds[name]
            info = api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(_DATA_TYPE[kind]))
            present = [_typed(v, kind) for v in values if v is not None]
            if kind is float:
                info.domain_interval.min_value = min(present)
                info.domain_interval.max_value = max(present)
            else:
                info.domain_discrete.extend(sorted(set(present), key=str))
            info.differs = len(set(present)) > 1
            infos.append(info)
        metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f"final/{m}")) for m in self.metrics]
        return api_pb2.Experiment(hparam_infos=infos, metric_infos=metrics)


def _hparams_table(runs: Sequence[TrialRun]) -> _Table:
    rows = [_hparams(run) for run in runs]
    names = dict.fromkeys(name for row in rows for name in row)  # in order, each once
    metrics = dict.fromkeys(name for run in runs for name in run.final)
    return _Table({name: [row.get(name) for row in rows] for name in names}, list(metrics))


def _hparams(run: TrialRun) -> dict[str, str]:
    """The run's parameters and tags as text ("null" left out)."""
    tags = {name: value for name, value in run.tags.items() if name not in HIDDEN_TAGS}
    return {name: text for name, text in (tags | run.params).items() if text != "null"}


def _kind(values: list[Any]) -> type:
    """The type every value of a column takes: bool, float, or else str."""
    present = [v for v in values if v is not None]
    if all(v.lower() in BOOLS for v in present):
        return bool
    return float if all(_number(v) is not None for v in present) else str


def _typed(text: str | None, kind: type) -> Value | None:
    if text is None:
        return None
    return BOOLS[text.lower()] if kind is bool else _number(text) if kind is float else text


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------------ writing
def _write_run(run: TrialRun, path: Path, table: _Table) -> None:
    """The run's scalars and HParams summaries into a new folder, with the marker that names its trial."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from torch.utils.tensorboard import SummaryWriter

    def plugin_summary(tag: str, **data: Any) -> Summary:
        content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**data))
        return Summary(value=[Summary.Value(tag=tag, metadata=content, tensor=metadata.NULL_TENSOR)])

    start = plugin_data_pb2.SessionStartInfo()
    for name, value in table.row(run).items():
        setattr(start.hparams[name], _FIELD[type(value)], value)
    status = api_pb2.Status.Value(STATUS.get(run.tags.get("status", ""), "STATUS_UNKNOWN"))
    last = max(run.last_step, 0)
    path.mkdir()
    with SummaryWriter(log_dir=str(path), max_queue=1000, flush_secs=3600) as writer:
        events = writer.file_writer  # the run's one event file: the HParams summaries go there too
        events.add_summary(plugin_summary(metadata.EXPERIMENT_TAG, experiment=table.experiment), 0)
        events.add_summary(plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start), 0)
        for step in sorted(run.steps):
            for tag, value in sorted(run.steps[step].items()):
                writer.add_scalar(tag, value, step)
        for name, value in run.final.items():
            writer.add_scalar(f"final/{name}", value, last)
        end = plugin_data_pb2.SessionEndInfo(status=status)
        events.add_summary(plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end), last)
    marker = {"sweep": run.sweep, "trial_key": run.trial_key, "last_step": run.last_step}
    (path / MARKER).write_text(json.dumps(marker) + "\n")


def _swap(new: Path, target: Path, staging: Path) -> bool:
    """Put the new run folder where the old one was (two renames, the old one then deleted); whether there
    was one."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):  # left alone; the line names it
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(target))
    if not target.exists():
        os.rename(new, target)
        return False
    old = staging / f".old-{target.name}"
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)  # the run exported before stays
        raise
    shutil.rmtree(old)
    return True


def _remove_stale(folder: Path, keys: set[str]) -> list[str]:
    """Remove the run folders this module wrote for trials the tables no longer hold; their names."""
    ours = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and (p / MARKER).is_file()]
    stale = sorted(p.name for p in ours if p.name not in keys)
    for name in stale:
        shutil.rmtree(folder / name)
    return stale


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
