"""Data larger than the memory budget: kept as uint8 images in host memory (pinned where the trial runs on a
GPU) and streamed to the device batch by batch through a `DataLoader` with worker processes, normalised there
exactly as the in-memory path normalises the whole set, so a trial's numbers do not depend on the path.

The budget is the setting `SPARSE_SWEEP_DATA_BUDGET_GB` (4 GiB by default): a data set whose normalised
float32 tensors would exceed it streams. `StreamedSplit` answers what the trainer asks of a split (`len`,
`y`, `device`, `input_shape`, `take`, `chunks`, `batches`) as `sweep.core.data.Split` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from sweep.errors import UserError

BUDGET_SETTING = "SPARSE_SWEEP_DATA_BUDGET_GB"
DEFAULT_BUDGET_GB = 4.0


def budget_bytes() -> float:
    """The memory a data set's normalised tensors may take on the device before it streams."""
    text = os.environ.get(BUDGET_SETTING, "")
    try:
        budget = float(text) if text.strip() else DEFAULT_BUDGET_GB
    except ValueError:
        budget = -1.0
    if budget < 0:
        raise UserError(f"{BUDGET_SETTING}={text!r}: give the data budget in GiB, a number >= 0")
    return budget * 2**30


class _Batches(Dataset):
    """Batches by index lists: one `__getitem__` per batch, so a worker gathers it in one indexing op."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: list[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(index)]


class Labelled:
    """What every kind of split answers from its labels `y`, which are on the device: its size and device."""

    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @property
    def device(self) -> torch.device:
        return self.y.device


@dataclass(frozen=True)
class StreamedSplit(Labelled):
    images: torch.Tensor  # uint8 N×C×H×W in host memory
    y: torch.Tensor  # labels, on the device
    scale: torch.Tensor  # 1×C×1×1 on the device: x/255/std
    shift: torch.Tensor  # 1×C×1×1 on the device: -mean/std

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def _normalised(self, images: torch.Tensor) -> torch.Tensor:
        on_device = images.to(self.device, non_blocking=True)
        return on_device.to(torch.float32).mul_(self.scale).add_(self.shift)

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at `index`, normalised on the device."""
        index = index.to(self.y.device)
        return self._normalised(self.images[index.cpu()]), self.y[index]

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split in order, `size` samples at a time (evaluation)."""
        for start in range(0, len(self), size):
            yield self._normalised(self.images[start : start + size]), self.y[start : start + size]

    def batches(self, order: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The training batches in `order`, gathered by worker processes, pinned, then sent to the device."""
        index = order.cpu()
        sampler = [index[start : start + size].tolist() for start in range(0, len(index), size)]
        workers = min(4, max(0, (os.cpu_count() or 1) - 1))
        loader = DataLoader(
            _Batches(self.images),
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        order = order.to(self.device)
        for start, images in zip(range(0, len(order), size), loader, strict=True):
            yield self._normalised(images), self.y[order[start : start + size]]


def streamed(
    x: torch.Tensor, y: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> StreamedSplit:
    """uint8 images `x` (host memory) and labels `y` as a split that streams to `device`."""
    scale, shift = normaliser(mean, std, device)
    images = x.pin_memory() if device.type == "cuda" else x
    return StreamedSplit(images, y.to(device), scale, shift)


def normaliser(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each 1×C×1×1 on `device`: uint8 pixels x become (x/255 - mean) / std as
    x·scale + shift, the same two in-place passes whether a data set is held whole or streamed."""
    scale = torch.tensor([1 / (255 * s) for s in std], device=device).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], device=device).view(1, -1, 1, 1)
    return scale, shift
