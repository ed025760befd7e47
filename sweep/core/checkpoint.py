"""A trial's state after an epoch: what continues it exactly where it stopped, on any machine.

The state holds the model (kernels or sparse values, biases, norms, and the masks as booleans), every weight
layer's mask, the optimizer's and the schedule's state, the mask method's own state (its random generator,
its next update, an IMP ticket's rewind point), the random state and the epoch. A trial restored from it
trains on as if it had never stopped: same batches (each epoch's order comes from the seed and the epoch),
same dropout draws, same updates. Plain torch: `save_state` and `load_state` read and write one file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

STATE_FILE = "trial_state.pt"
FORMAT = 2


class Trainable(Protocol):
    """What a state is captured from and restored into (`sweep.core.train.Training`)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    masks: Any  # the mask method's schedule: state_dict() and load_state_dict()


def capture(training: Trainable, epoch: int) -> dict[str, Any]:
    """The state after `epoch`, as CPU tensors and plain data (masks as booleans: a quarter the size)."""
    model = training.model
    weights = {
        name: (value.bool() if name.endswith("mask") else value).detach().cpu().clone()
        for name, value in model.state_dict().items()
    }
    return {
        "format": FORMAT,
        "epoch": epoch,
        "model": weights,
        "masks": [layer.dense_mask().detach().bool().cpu().clone() for layer in model.weight_layers],
        "optimizer": _to_cpu(training.optimizer.state_dict()),
        "schedule": training.schedule.state_dict(),
        "method": _to_cpu(training.masks.state_dict()),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore(state: dict[str, Any], training: Trainable) -> int:
    """Put `state` into a freshly built training (its model built with the state's masks); return the epoch
    it was taken after."""
    if state.get("format") != FORMAT:
        raise ValueError(f"trial state format {state.get('format')!r}, expected {FORMAT}")
    current = training.model.state_dict()
    weights = {name: value.to(current[name].dtype) for name, value in state["model"].items()}
    training.model.load_state_dict(weights)
    training.optimizer.load_state_dict(state["optimizer"])
    training.schedule.load_state_dict(state["schedule"])
    training.masks.load_state_dict(state["method"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"])


def save_state(state: dict[str, Any], folder: str | Path) -> Path:
    """Write the state into `folder` as one file; return its path."""
    path = Path(folder) / STATE_FILE
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def load_state(folder: str | Path) -> dict[str, Any]:
    """Read a state written by `save_state` (tensors and plain data only: no code is unpickled)."""
    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value
