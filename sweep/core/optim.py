"""The optimizer and the learning-rate schedule a trial's `train` section asks for."""

from __future__ import annotations

import torch

from sweep.spec import TrainSpec


def make_optimizer(params: object, tcfg: TrainSpec) -> torch.optim.Optimizer:
    """The optimizer with fused kernels where torch has them (one kernel for all parameters per step)."""
    common = {"lr": tcfg.lr, "weight_decay": tcfg.weight_decay}
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(params, fused=True, **common)
    if tcfg.optimizer == "momentum":
        nesterov = tcfg.nesterov and tcfg.momentum > 0
        return torch.optim.SGD(params, momentum=tcfg.momentum, nesterov=nesterov, fused=True, **common)
    if tcfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, foreach=True, **common)
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad}
    return optimizer[tcfg.optimizer](params, fused=True, **common)


def lr_schedule(optimizer: torch.optim.Optimizer, tcfg: TrainSpec) -> torch.optim.lr_scheduler.LRScheduler:
    if tcfg.schedule == "step":
        step = tcfg.step_size or max(1, tcfg.epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=tcfg.gamma)
    if tcfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tcfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
