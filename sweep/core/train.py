"""The trainer: one `TrialConfig` in, per-epoch metrics out through a callback. Plain PyTorch, no Ray.

Read it top to bottom: `train_trial` builds the data, the masked model and the optimizer, reports epoch 0
(the untrained net), then trains epoch by epoch. After each epoch it evaluates, probes the gradient flow
on a fixed probe set, and reports. A NaN or inf training loss ends the trial as `diverged`. Every report
can capture the trial's state (`EpochReport.capture`), and `resume=` continues a trial from such a state
exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweep.core import checkpoint
from sweep.core.data import ArrayDataset, DeviceDataset, Split, Splits, load_arrays, make_splits
from sweep.core.gradflow import measure_flow
from sweep.core.layers import MaskEnforcer
from sweep.core.models import SparseNet, build_model
from sweep.errors import UserError
from sweep.spec import TrainSpec, TrialConfig

# Forward-only chunk size for evaluation and the gradient-flow probe: small chunks stay in the CPU's
# caches (a CNN evaluates about 2.5x faster at 256 than at 4096 here); a GPU wants large ones.
EVAL_BATCH = {"cpu": 256, "cuda": 4096}


@dataclass(frozen=True)
class TrialFacts:
    """What does not change during a trial: sizes, per-layer structure, where it runs."""

    active_weights: int
    total_weights: int
    total_params: int
    densities: list[float]
    layers: list[dict]
    device: str
    node: str


@dataclass(frozen=True)
class EpochReport:
    """One epoch's metrics (the `epochs` row) and per-layer gradient flow (the `layers` rows).

    `capture()` returns the trial's state after this epoch (see `sweep.core.checkpoint`); it is only
    computed when asked for, so a caller that keeps no checkpoints pays nothing.
    """

    epoch: int
    metrics: dict[str, float | None]
    layers: list[dict]
    diverged: bool = False
    capture: Callable[[], dict[str, Any]] | None = field(default=None, repr=False, compare=False)


@dataclass
class TrialOutcome:
    config: TrialConfig
    status: str = "done"
    error: str | None = None
    facts: TrialFacts | None = None
    epochs: list[EpochReport] = field(default_factory=list)
    model: SparseNet | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None

    @property
    def wall_s(self) -> float:
        return ((self.ended_at or datetime.now(UTC)) - self.started_at).total_seconds()


EpochCallback = Callable[[EpochReport, TrialFacts], None]


def train_trial(
    config: TrialConfig,
    *,
    data: ArrayDataset | DeviceDataset | Splits | None = None,
    on_epoch: EpochCallback | None = None,
    resume: dict[str, Any] | None = None,
) -> TrialOutcome:
    """Train one trial. `data` may be pre-loaded arrays, tensors already on the device, or ready splits.

    `resume` is a state captured after some epoch: training goes on from the next one, and only the epochs
    after it are reported."""
    outcome = TrialOutcome(config)
    seed, tcfg = config.train.seed, config.train
    device = resolve_device(tcfg.device)
    torch.manual_seed(seed)
    splits = (
        data
        if isinstance(data, Splits)
        else make_splits(
            data if data is not None else load_arrays(config.dataset), config.dataset, seed, device
        )
    )
    model = build_model(config.model, splits.input_shape, splits.num_classes, seed, device.type).to(device)
    enforcer = MaskEnforcer(model.weight_layers)
    optimizer = make_optimizer(model.parameters(), tcfg)
    schedule = make_schedule(optimizer, tcfg)
    probe = Split(splits.train.x[: config.egf.samples], splits.train.y[: config.egf.samples])
    outcome.facts, outcome.model = trial_facts(model, device), model

    def report(
        epoch: int, train_stats: tuple[float, float] | None, train_s: float, lr: float, started: float
    ) -> EpochReport:
        test_loss, test_acc = evaluate(model, splits.test)
        _, val_acc = evaluate(model, splits.val)
        flow = measure_flow(model, probe.x, probe.y, mode=config.egf.mode, chunk_size=EVAL_BATCH[device.type])
        train_loss, train_acc = train_stats or (None, None)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            **flow.measures(),
            "lr": lr,
            "seconds": time.perf_counter() - started,
            "samples_per_s": len(splits.train) / train_s if train_stats else None,
        }
        diverged = train_loss is not None and not math.isfinite(train_loss)

        def capture() -> dict[str, Any]:
            return checkpoint.capture(model, optimizer, schedule, epoch)

        result = EpochReport(epoch, metrics, flow.layer_rows(), diverged, capture)
        outcome.epochs.append(result)
        if on_epoch is not None:
            on_epoch(result, outcome.facts)
        return result

    first = 1
    if resume is not None:
        first = checkpoint.restore(resume, model, optimizer, schedule) + 1
    else:
        report(0, None, 0.0, optimizer.param_groups[0]["lr"], time.perf_counter())
    for epoch in range(first, tcfg.epochs + 1):
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        stats = train_epoch(model, splits.train, optimizer, enforcer, tcfg, epoch)
        train_s = time.perf_counter() - started
        schedule.step()
        if report(epoch, stats, train_s, lr, started).diverged:
            outcome.status = "diverged"
            break
    outcome.ended_at = datetime.now(UTC)
    return outcome


def train_epoch(
    model: SparseNet,
    data: Split,
    optimizer: torch.optim.Optimizer,
    enforcer: MaskEnforcer,
    tcfg: TrainSpec,
    epoch: int,
) -> tuple[float, float]:
    """One pass over the training set in a seeded random order. Returns (mean loss, accuracy).

    Batches are gathered into buffers allocated once per epoch, and the per-step bookkeeping is two cheap
    ops (the loss tensor is kept, the predictions go into a preallocated tensor), reduced once at the end.
    """
    model.train()
    n, batch, device = len(data), tcfg.batch_size, data.x.device
    generator = torch.Generator().manual_seed(tcfg.seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).to(device)
    batch_x = torch.empty((min(batch, n), *data.x.shape[1:]), dtype=data.x.dtype, device=device)
    batch_y = torch.empty(min(batch, n), dtype=data.y.dtype, device=device)
    predictions = torch.empty(n, dtype=torch.long, device=device)
    losses = []
    for start in range(0, n, batch):
        index = order[start : start + batch]
        x = torch.index_select(data.x, 0, index, out=batch_x[: len(index)])
        y = torch.index_select(data.y, 0, index, out=batch_y[: len(index)])
        if tcfg.augment == "flip_crop":
            x = flip_crop(x, generator)
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        enforcer.mask_gradients()
        optimizer.step()
        losses.append(loss.detach())
        torch.argmax(out.detach(), 1, out=predictions[start : start + batch])
    enforcer.mask_weights()  # a no-op unless something non-finite crept in: masked gradients keep zeros exact
    sizes = torch.full((len(losses),), float(batch), device=device)
    sizes[-1] = n - batch * (len(losses) - 1)
    mean_loss = (torch.stack(losses) * sizes).sum().item() / n
    return mean_loss, (predictions == data.y[order]).float().mean().item()


@torch.no_grad()
def evaluate(model: nn.Module, data: Split) -> tuple[float | None, float | None]:
    """Mean cross-entropy and accuracy in eval mode; (None, None) for an empty split."""
    if len(data) == 0:
        return None, None
    model.eval()
    loss = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), dtype=torch.long, device=data.x.device)
    chunk = EVAL_BATCH[data.x.device.type]
    for start in range(0, len(data), chunk):
        out = model(data.x[start : start + chunk])
        y = data.y[start : start + chunk]
        loss += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    return loss.item() / len(data), correct.item() / len(data)


def flip_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop after zero padding (H/8 pixels), per sample, on device."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    flips = torch.rand(n, generator=generator).to(x.device) < 0.5
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(-1, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


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


def make_schedule(optimizer: torch.optim.Optimizer, tcfg: TrainSpec) -> torch.optim.lr_scheduler.LRScheduler:
    if tcfg.schedule == "step":
        step = tcfg.step_size or max(1, tcfg.epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=tcfg.gamma)
    if tcfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tcfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def resolve_device(requested: str) -> torch.device:
    """`auto` is CUDA where this process sees a GPU, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: 'cuda', but no CUDA device is visible here; use auto or cpu")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def trial_facts(model: SparseNet, device: torch.device) -> TrialFacts:
    layers = [
        {
            "layer": i,
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
    )
