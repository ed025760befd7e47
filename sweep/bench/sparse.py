"""Sparse kernels: the masked backend against `backend: auto`, and the calibration of its threshold."""

from __future__ import annotations

import json
import statistics

import torch
from torch import nn

from sweep.bench.harness import Result, Settings, Trainer, alternate, machine, paired
from sweep.core.data import Split, Splits
from sweep.core.layers import MaskEnforcer, calibration_path, sparse_threshold, to_sparse
from sweep.core.models import build_model
from sweep.spec import ModelSpec, TrainSpec


def sparse_speed(splits: Splits, settings: Settings) -> Result:
    """The SC-SDC MLP of ratio 0.1 (width 3076, 4 hidden layers): masked backend against `auto`."""
    width, dense = 3076, 308
    share = dense / width
    densities = (share, share * share, share * share, share * share, share)
    samples = 512 if settings.quick else 4096
    subset = Split(splits.train.x[:samples], splits.train.y[:samples])
    tcfg = TrainSpec(optimizer="momentum", lr=0.05)
    masked, auto = (
        Trainer(ModelSpec(widths=(width,) * 4, densities=densities, backend=b), splits, settings, tcfg)
        for b in ("masked", "auto")
    )
    times_masked, times_auto = alternate(
        lambda: masked.epoch(subset),
        lambda: auto.epoch(subset),
        settings,
        repeats=3 if settings.quick else 5,  # each masked epoch takes seconds here
    )
    backends = [layer.backend for layer in auto.model.weight_layers]
    return paired(
        times_masked,
        times_auto,
        "masked s/epoch",
        "auto s/epoch",
        extra={"samples": len(subset), "auto_backends": backends},
    )


def calibrate(settings: Settings) -> dict:
    """Where sparse kernels start to pay: one 3076x3076 layer, batch 128, forward and both backward products.

    The threshold is the highest density at which the sparse layer is at least 10% faster than the masked
    one. A full run records it for `backend: auto` on this device; a quick run only reports it.
    """
    size, batch = (1024, 64) if settings.quick else (3076, 128)
    densities = (0.01, 0.05, 0.2) if settings.quick else (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
    x = torch.randn(batch, size, device=settings.device, requires_grad=True)
    grad = torch.randn(batch, size, device=settings.device)
    timings = {}

    def step(layer: nn.Module, enforcer: MaskEnforcer | None = None) -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)
        if enforcer is not None:
            enforcer.mask_gradients()

    for density in densities:
        spec = ModelSpec(widths=(size,), densities=(density, 1.0), backend="masked")
        masked = (
            build_model(spec, (1, 1, size), size, seed=0, device_type=settings.device.type)
            .weight_layers[0]
            .to(settings.device)
        )
        sparse = to_sparse(masked).to(settings.device)
        times_m, times_s = alternate(
            lambda m=masked: step(m, MaskEnforcer([m])), lambda s=sparse: step(s), settings, repeats=3
        )
        timings[density] = {"masked_s": statistics.median(times_m), "sparse_s": statistics.median(times_s)}
    faster = [d for d, t in timings.items() if t["sparse_s"] < 0.9 * t["masked_s"]]
    threshold = max(faster) * 1.01 if faster else min(densities) / 2
    result = {
        "device": settings.device.type,
        "threshold": threshold,
        "layer": f"{size}x{size}",
        "batch": batch,
        "timings": {str(d): t for d, t in timings.items()},
    }
    if not settings.quick:
        path = calibration_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved[settings.device.type] = {**result, "machine": machine(settings.device)}
        path.write_text(json.dumps(saved, indent=2))
        sparse_threshold.cache_clear()
    return result
