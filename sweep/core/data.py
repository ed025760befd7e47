"""Data sets as whole tensors on the trial's device.

Loading has three steps. `load_arrays` reads a data set once (uint8 NumPy arrays, N×C×H×W); that is the
part a Ray node shares between trials. `to_device` turns the arrays into normalised float tensors on a
device (once per process). `make_splits` takes the subset, the validation split (drawn from the trial's
seed) and the test set from those tensors. The files are read in `readers` (the fixed data sets) and
`image_folder` (the user's own images).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from sweep.core.data_factory import read_factory
from sweep.core.data_facts import SHAPES, dataset_shape, dataset_sizes, split_sizes
from sweep.core.image_folder import read_image_folder
from sweep.core.readers import (
    DEBIAN_FASHION_MNIST,
    check_data_dir,
    read_fashion_mnist,
    read_idx,
    read_synthetic,
    read_torchvision,
)
from sweep.core.streaming import Labelled, StreamedSplit, budget_bytes, normaliser, streamed
from sweep.spec import DatasetSpec

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "SHAPES",
    "ArrayDataset",
    "DeviceDataset",
    "Split",
    "Splits",
    "dataset_shape",
    "dataset_sizes",
    "load_arrays",
    "make_splits",
    "read_idx",
    "to_device",
]


@dataclass(frozen=True)
class ArrayDataset:
    """A data set as loaded: images N×C×H×W (uint8), labels N (int64), and per-channel statistics."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


@dataclass(frozen=True)
class Split(Labelled):
    """Normalised images and labels on the device (a `StreamedSplit` answers the same questions)."""

    x: torch.Tensor
    y: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), size):
            yield self.x[start : start + size], self.y[start : start + size]

    def batches(self, order: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches in `order`, gathered into two buffers allocated once (the last batch is a view)."""
        rows = min(size, len(self))
        batch_x = torch.empty((rows, *self.x.shape[1:]), dtype=self.x.dtype, device=self.device)
        batch_y = torch.empty(rows, dtype=self.y.dtype, device=self.device)
        for start in range(0, len(order), size):
            index = order[start : start + size]
            x = torch.index_select(self.x, 0, index, out=batch_x[: len(index)])
            yield x, torch.index_select(self.y, 0, index, out=batch_y[: len(index)])


@dataclass(frozen=True)
class Splits:
    """Normalised float tensors on one device, or streamed to it (larger than the memory budget). `val` is
    empty when `val_fraction` is 0."""

    train: Split | StreamedSplit
    val: Split | StreamedSplit
    test: Split | StreamedSplit
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.input_shape)


def load_arrays(spec: DatasetSpec) -> ArrayDataset:
    """Read the whole data set named by the spec (subsets are taken later, in `make_splits`)."""
    if spec.name == "image_folder":
        train_x, train_y, test_x, test_y = read_image_folder(spec)
    elif spec.name == "synthetic":
        train_x, train_y, test_x, test_y = read_synthetic()
    elif spec.name == "factory":
        train_x, train_y, test_x, test_y = read_factory(spec)
    else:
        if spec.data_dir:
            check_data_dir(spec)
        reader = read_fashion_mnist if spec.name == "fashion_mnist" else read_torchvision
        train_x, train_y, test_x, test_y = reader(spec)
    mean, std = channel_statistics(train_x)
    return ArrayDataset(
        name=spec.name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=int(max(train_y.max(), test_y.max())) + 1,
        mean=mean,
        std=std,
    )


def channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Each channel's mean and standard deviation of uint8 images N×C×H×W, on the [0, 1] scale, from whole-
    number sums of the channel's counts of its 256 values (exact until the float they end in), so no float
    copy of the images is made (a float64 one is 8 times their size). A constant channel (opaque images'
    alpha) has no spread: its std is 1, so it is only centred."""
    means, stds = [], []
    for channel in range(images.shape[1]):
        # the channel's pixels (copied only where there are more channels), gone before the next is made
        counts = torch.bincount(torch.from_numpy(images[:, channel]).reshape(-1), minlength=256).tolist()
        n = max(1, sum(counts))
        first = sum(value * count for value, count in enumerate(counts))
        second = sum(value * value * count for value, count in enumerate(counts))
        variance = Fraction(n * second - first * first, (255 * n) ** 2)
        means.append(float(Fraction(first, 255 * n)))
        stds.append(math.sqrt(variance) if variance > 0 else 1.0)
    return tuple(means), tuple(stds)


@dataclass(frozen=True)
class DeviceDataset:
    """A whole data set as normalised float tensors on one device, before any split (seed-independent,
    so a process can keep it for every trial it runs)."""

    train: Split
    test: Split
    num_classes: int


def to_device(data: ArrayDataset, device: torch.device | str = "cpu") -> DeviceDataset:
    """Normalise per channel, (x/255 - mean) / std, in one conversion and two in-place passes."""
    scale, shift = normaliser(data.mean, data.std, device)

    def tensors(x: np.ndarray, y: np.ndarray) -> Split:
        with warnings.catch_warnings():  # read-only arrays (Ray's object store) are copied right here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            images = torch.from_numpy(x).to(device=device, dtype=torch.float32)
            labels = torch.from_numpy(y).to(device=device, dtype=torch.long)
        return Split(images.mul_(scale).add_(shift), labels)

    return DeviceDataset(
        tensors(data.train_x, data.train_y), tensors(data.test_x, data.test_y), data.num_classes
    )


def make_splits(
    data: ArrayDataset | DeviceDataset, spec: DatasetSpec, seed: int, device: torch.device | str = "cpu"
) -> Splits:
    """Subset (the first N samples), validation split drawn from the seed, and the test set; streamed to the
    device (`sweep.core.streaming`) when the arrays' float tensors would exceed the memory budget."""
    if isinstance(data, ArrayDataset) and fits(data):
        data = to_device(data, device)
    elif isinstance(data, ArrayDataset):
        return _streamed_splits(data, spec, seed, torch.device(device))
    device = data.train.x.device
    n_train, n_test, n_val = split_sizes(spec, len(data.train), len(data.test))
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed)).to(device)

    def pick(index: torch.Tensor) -> Split:
        return Split(data.train.x.index_select(0, index), data.train.y.index_select(0, index))

    return Splits(
        train=pick(order[n_val:]),
        val=pick(order[:n_val]),
        test=Split(data.test.x[:n_test], data.test.y[:n_test]),
        num_classes=data.num_classes,
    )


def fits(data: ArrayDataset) -> bool:
    """Whether the data set's normalised float32 tensors fit the memory budget."""
    samples = len(data.train_y) + len(data.test_y)
    return samples * math.prod(data.input_shape) * 4 <= budget_bytes()


def _streamed_splits(data: ArrayDataset, spec: DatasetSpec, seed: int, device: torch.device) -> Splits:
    """The same subset, validation draw and test set as in memory, each a `StreamedSplit`."""
    n_train, n_test, n_val = split_sizes(spec, len(data.train_y), len(data.test_y))
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():  # read-only arrays (Ray's object store) are copied where indexed
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        train_x, train_y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
        test_x, test_y = torch.from_numpy(data.test_x[:n_test]), torch.from_numpy(data.test_y[:n_test])

    def pick(index: torch.Tensor) -> StreamedSplit:
        return streamed(train_x[index], train_y[index].long(), data.mean, data.std, device)

    return Splits(
        train=pick(order[n_val:]),
        val=pick(order[:n_val]),
        test=streamed(test_x.clone(), test_y.long(), data.mean, data.std, device),
        num_classes=data.num_classes,
    )
