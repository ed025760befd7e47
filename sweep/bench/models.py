"""Any model masked in place against the same model trained plainly: torchvision's ResNet-18 on 32×32 images.

- resnet_masking = the masked trainer's epoch (masks in place, gradients masked before every step) / a plain
                   loop over the same batches with the plain model and the same optimizer;
- model_bytes    = the bytes a masked ResNet-18 holds (parameters, masks and buffers) / the plain model's.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from sweep.bench.harness import Result, Settings, Trainer, alternate, paired
from sweep.bench.trainer import plain_epoch
from sweep.core.data import Split, Splits
from sweep.core.optim import make_optimizer
from sweep.spec import ModelSpec, TrainSpec

RESNET = ModelSpec(family="torchvision", name="resnet18", densities=0.1)
IMAGES, CLASSES = (3, 32, 32), 10


def resnet_masking(settings: Settings) -> Result:
    """Masked against plain ResNet-18 training, alternated over the same batches."""
    steps, batch = (2, 32) if settings.quick else (6, 64)
    tcfg = TrainSpec(optimizer="momentum", lr=0.05, batch_size=batch)
    data = _images(steps * batch, settings.device)
    splits = Splits(data, Split(data.x[:0], data.y[:0]), data, CLASSES)
    masked = Trainer(RESNET, splits, settings, tcfg)
    plain = torchvision.models.resnet18(num_classes=CLASSES).to(settings.device)
    optimizer = make_optimizer(plain.parameters(), tcfg)
    repeats = 3 if settings.quick else 9
    times_a, times_b = alternate(
        lambda: masked.epoch(data), lambda: plain_epoch(plain, data, optimizer, batch), settings, repeats
    )
    sizes = {"steps": steps, "batch": batch}
    return paired(times_a, times_b, "masked ResNet-18 s", "plain ResNet-18 s", sizes)


def model_bytes(settings: Settings) -> Result:
    """Bytes held by the masked model over the plain model's (one figure: it does not vary)."""
    data = _images(2, settings.device)
    splits = Splits(data, data, data, CLASSES)
    masked = Trainer(RESNET, splits, settings, TrainSpec()).model
    plain = torchvision.models.resnet18(num_classes=CLASSES)
    held, plain_held = _bytes(masked), _bytes(plain)
    return Result([held / plain_held], {"masked bytes": held, "plain bytes": plain_held})


def _bytes(model: nn.Module) -> int:
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _images(count: int, device: torch.device) -> Split:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((count, *IMAGES), generator=generator).to(device)
    return Split(x, torch.randint(0, CLASSES, (count,), generator=generator).to(device))
