"""What does not change during a trial (or changes only with its masks): sizes, per-layer structure, where it
runs, how many epochs it trains; and which device that is."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import torch

from sweep.core.masked_model import WeightLayers
from sweep.errors import UserError


@dataclass(frozen=True)
class TrialFacts:
    """A trial's sizes and per-layer structure (they follow its masks), where it runs, how long it trains."""

    active_weights: int
    total_weights: int
    total_params: int
    densities: list[float]
    layers: list[dict]
    device: str
    node: str
    epochs_total: int  # every epoch it trains (IMP trains `train.epochs` per level)


def resolve_device(requested: str) -> torch.device:
    """`auto` is CUDA where this process sees a GPU, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: 'cuda', but no CUDA device is visible here; use auto or cpu")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def trial_facts(model: WeightLayers, device: torch.device, epochs_total: int) -> TrialFacts:
    names = model.layer_names
    layers = [
        {
            "layer": i,
            "module": names[i],
            "kind": layer.kind,
            "backend": layer.backend,
            "shape": list(layer.shape),
            "density": layer.density,
            "active_weights": layer.active_weights,
            "total_weights": layer.total_weights,
        }
        for i, layer in enumerate(model.weight_layers)
    ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return TrialFacts(
        active_weights=model.active_weights,
        total_weights=model.total_weights,
        total_params=model.total_params,
        densities=[layer["density"] for layer in layers],
        layers=layers,
        device=f"{device} ({name})" if device.type == "cuda" else "cpu",
        node=socket.gethostname(),
        epochs_total=epochs_total,
    )
