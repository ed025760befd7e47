"""A sweep's runs in Weights & Biases: one run per trial in the sweep's group, named by its trial key, with an
id made from (sweep, trial key), its settings as config, its epochs logged at step = epoch (the layers' terms
as `layer/<module>/<metric>`), its final metrics in the summary as `final/<metric>`, and its tags both as
W&B tags (`name=value`) and under `sparse_sweep` in the config. The sweep's kind is the run's job type.

Offline by default: runs are written under `<folder>/wandb/` and `wandb sync` uploads them later. Exporting
again replaces a trial's offline run with a new one of the same id (written in a staging folder, moved into
place once whole), so a folder holds one run per trial. Online (`online=True`), a run of that id is resumed
and gets only the epochs after the last step W&B holds, so no step is logged twice.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sweep.errors import UserError, first_line
from sweep.store.location import is_uri, local_folder
from sweep.trackers.runs import TrialRun

INSTALL = "pip install 'sparse-sweep[wandb]'"
PROJECT = "sparse-sweep"  # unless WANDB_PROJECT names another
MAX_TAG = 64  # W&B's longest tag
QUIET = {"silent": True, "console": "off", "save_code": False, "disable_git": True, "x_disable_stats": True}
QUIET |= {"x_disable_meta": True, "x_disable_machine_info": True, "x_save_requirements": False}


def default_folder(results_root: str) -> Path:
    """Where the runs go when no folder is given: `<results>/wandb` for a local results folder, `./wandb`
    when the results are in a bucket."""
    return local_folder(results_root) or Path.cwd()


def run_id(sweep: str, trial_key: str) -> str:
    """The W&B id of a trial's run: the same at every export."""
    return hashlib.sha256(f"{sweep}\0{trial_key}".encode()).hexdigest()[:24]


def export_wandb(
    runs: Sequence[TrialRun],
    sweep: str,
    folder: str | Path,
    online: bool = False,
    echo: Callable[[str], object] = print,
) -> Path:
    """Write every run of the sweep as a W&B run under `<folder>/wandb` and return that folder. W&B not
    installed, a folder that cannot be written, or a run W&B refuses is one line."""
    try:
        import wandb
    except ImportError:
        raise UserError(f"exporting to Weights & Biases needs the wandb package: {INSTALL}") from None
    if is_uri(str(folder)):
        raise UserError(f"wandb folder {folder}: give a local folder (W&B writes its runs there)")
    root = Path(folder)
    try:
        (root / "wandb").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"wandb folder {root} cannot be written: {exc.strerror or exc}") from None
    settings = wandb.Settings(mode="online" if online else "offline", **QUIET)
    project = os.environ.get("WANDB_PROJECT") or PROJECT
    staging = root / f".wandb-export-{uuid.uuid4().hex[:12]}"
    try:
        for run in runs:
            written = _write_run(wandb, settings, project, run, staging)
            if not online:
                _swap(written, root / "wandb", run_id(run.sweep, run.trial_key))
    except Exception as exc:  # W&B's errors, and the OS's under its folder
        if not isinstance(exc, wandb.errors.Error | OSError):
            raise
        raise UserError(f"W&B: trial {run.trial_key}: {first_line(exc)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not online:
        upload = f"wandb sync {shlex.quote(str(root / 'wandb'))}/offline-run-*"
        echo(f"wandb: {len(runs)} offline runs of sweep {sweep} in {root / 'wandb'}; upload them: {upload}")
    return root / "wandb"


def _write_run(wandb: Any, settings: Any, project: str, run: TrialRun, staging: Path) -> Path:
    """One trial's run, written under `staging`, and the folder W&B wrote it to: offline a whole new run,
    online the epochs the run of that id lacks."""
    identity = run_id(run.sweep, run.trial_key)
    tracked = wandb.init(
        dir=str(staging),
        project=project,
        id=identity,
        name=run.trial_key,
        group=run.sweep,
        job_type=run.tags.get("kind"),
        tags=[f"{name}={value}"[:MAX_TAG] for name, value in sorted(run.tags.items())],
        config={**run.params, "sparse_sweep": run.tags},
        resume="allow",
        settings=settings,
        reinit="create_new",
    )
    failed = run.tags.get("status") in ("diverged", "error")
    try:
        for step in sorted(s for s in run.steps if s >= tracked.step):
            tracked.log(run.steps[step], step=step)
        tracked.summary.update({f"final/{name}": value for name, value in run.final.items()})
    except BaseException:
        tracked.finish(exit_code=1)
        raise
    tracked.finish(exit_code=1 if failed else 0)
    (written,) = (staging / "wandb").glob(f"*-{identity}*")
    return written


def _swap(written: Path, folder: Path, identity: str) -> None:
    """The run's new folder in place of those written for it before (W&B names a folder by the time)."""
    for earlier in folder.glob(f"offline-run-*-{identity}*"):
        shutil.rmtree(earlier)
    written.rename(folder / written.name)
