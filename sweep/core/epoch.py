"""One training epoch, evaluation, and augmentation: the inner loops of the trainer, plain PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from sweep.core.data import Split
from sweep.core.precision import autocast, loss_scaler
from sweep.core.streaming import StreamedSplit

if TYPE_CHECKING:
    from sweep.core.train import Training

# Forward-only chunk size for evaluation and the gradient-flow probe: small chunks stay in the CPU's
# caches (a CNN evaluates about 2.5x faster at 256 than at 4096 here); a GPU wants large ones.
EVAL_BATCH = {"cpu": 256, "cuda": 4096}


def train_epoch(
    training: Training, data: Split | StreamedSplit, epoch: int, first_step: int = 0
) -> tuple[float, float]:
    """One pass of `training` (its model, optimizer, mask enforcer and mask schedule) over the training set
    in a seeded random order. Returns (mean loss, accuracy).

    Batches are gathered into buffers allocated once per epoch, and the per-step bookkeeping is two cheap
    ops (the loss tensor is kept, the predictions go into a preallocated tensor), reduced once at the end.
    At the step a mask method asks for (`masks.next_step`, counting from `first_step`), its mask update takes
    the place of the optimizer step, while the gradients are still the dense ones. The forward pass runs in
    `tcfg.precision` (`sweep.core.precision`).
    """
    model, optimizer, enforcer = training.model, training.optimizer, training.enforcer
    tcfg, masks = training.tcfg, training.masks
    model.train()
    n, batch, device = len(data), tcfg.batch_size, data.device
    generator = torch.Generator().manual_seed(tcfg.seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).to(device)
    predictions = torch.empty(n, dtype=torch.long, device=device)
    losses = []
    scaler = loss_scaler(tcfg.precision, device)
    for step, (x, y) in enumerate(data.batches(order, batch), start=first_step):
        start = (step - first_step) * batch
        if tcfg.augment == "flip_crop":
            x = flip_crop(x, generator)
        with autocast(tcfg.precision, device):
            out = model(x)
            loss = F.cross_entropy(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if step == masks.next_step:
            masks.update(step)
        else:
            enforcer.mask_gradients()
            scaler.step(optimizer)
        scaler.update()
        losses.append(loss.detach())
        torch.argmax(out.detach(), 1, out=predictions[start : start + batch])
    enforcer.mask_weights()  # a no-op unless something non-finite crept in: masked gradients keep zeros exact
    sizes = torch.full((len(losses),), float(batch), device=device)
    sizes[-1] = n - batch * (len(losses) - 1)
    mean_loss = (torch.stack(losses) * sizes).sum().item() / n
    return mean_loss, (predictions == data.y[order]).float().mean().item()


@torch.no_grad()
def evaluate(model: nn.Module, data: Split | StreamedSplit) -> tuple[float | None, float | None]:
    """Mean cross-entropy and accuracy in eval mode; (None, None) for an empty split."""
    if len(data) == 0:
        return None, None
    model.eval()
    loss = torch.zeros((), device=data.device)
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    for x, y in data.chunks(EVAL_BATCH[data.device.type]):
        out = model(x)
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
