"""Mixed precision (`train.precision`): the forward pass and the loss under autocast, in bf16 or fp16, while
the weights, their gradients and the optimizer's state stay in float32, so masked weights stay exactly zero
(their gradients are masked before every step, whatever precision computed them). fp16 scales the loss
(`torch.amp.GradScaler`) and needs a GPU; bf16 runs on the CPU too."""

from __future__ import annotations

import contextlib

import torch

from sweep.errors import UserError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """fp16 autocast needs a GPU: on a CPU it is one clear error."""
    if precision == "fp16" and device.type != "cuda":
        raise UserError(f"train.precision: fp16 needs a CUDA device, this trial runs on {device}; use bf16")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward pass's precision: float32 as it is, or autocast to bf16 or fp16."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def loss_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Scales fp16 losses so small gradients do not underflow; a pass-through for fp32 and bf16."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
