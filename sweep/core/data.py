"""Data sets as whole tensors on the trial's device.

Loading has three steps. `load_arrays` reads a data set once (uint8 NumPy arrays, N×C×H×W); that is the
part a Ray node shares between trials. `to_device` turns the arrays into normalised float tensors on a
device (once per process). `make_splits` takes the subset, the validation split (drawn from the trial's
seed) and the test set from those tensors. The files are read in `readers` (the fixed data sets) and
`image_folder` (the user's own images).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from sweep.core.image_folder import folder_shape, read_image_folder
from sweep.core.readers import (
    DEBIAN_FASHION_MNIST,
    check_data_dir,
    read_fashion_mnist,
    read_idx,
    read_synthetic,
    read_torchvision,
)
from sweep.errors import DataError
from sweep.spec import DatasetSpec

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "SHAPES",
    "ArrayDataset",
    "DeviceDataset",
    "Split",
    "Splits",
    "dataset_shape",
    "load_arrays",
    "make_splits",
    "read_idx",
    "to_device",
]

# Each fixed data set's image shape (C, H, W) and number of classes, known before any file is read (plans
# count weights with them; a test checks them against the loaded data). `dataset_shape` adds image_folder.
SHAPES = {
    "fashion_mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "svhn": ((3, 32, 32), 10),
    "synthetic": ((1, 12, 12), 10),
}


def dataset_shape(spec: DatasetSpec) -> tuple[tuple[int, int, int], int]:
    """The input shape (C, H, W) and the number of classes, before the data is read (image_folder: from
    `channels`, `image_size` and the class sub-folders' names; a bad folder is a `DataError` here)."""
    if spec.name == "image_folder":
        return folder_shape(spec)
    return SHAPES[spec.name]


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
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    """Normalised float tensors on one device. `val` is empty when `val_fraction` is 0."""

    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])


def load_arrays(spec: DatasetSpec) -> ArrayDataset:
    """Read the whole data set named by the spec (subsets are taken later, in `make_splits`)."""
    if spec.name == "image_folder":
        train_x, train_y, test_x, test_y = read_image_folder(spec)
    elif spec.name == "synthetic":
        train_x, train_y, test_x, test_y = read_synthetic()
    else:
        if spec.data_dir:
            check_data_dir(spec)
        reader = read_fashion_mnist if spec.name == "fashion_mnist" else read_torchvision
        train_x, train_y, test_x, test_y = reader(spec)
    std = train_x.std(axis=(0, 2, 3), dtype=np.float64) / 255
    stats = (  # a constant channel (opaque images' alpha) has no spread: it is only centred, to 0
        train_x.mean(axis=(0, 2, 3), dtype=np.float64) / 255,
        np.where(std > 0, std, 1.0),
    )
    return ArrayDataset(
        name=spec.name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        num_classes=int(max(train_y.max(), test_y.max())) + 1,
        mean=tuple(float(m) for m in stats[0]),
        std=tuple(float(s) for s in stats[1]),
    )


@dataclass(frozen=True)
class DeviceDataset:
    """A whole data set as normalised float tensors on one device, before any split (seed-independent,
    so a process can keep it for every trial it runs)."""

    train: Split
    test: Split
    num_classes: int


def to_device(data: ArrayDataset, device: torch.device | str = "cpu") -> DeviceDataset:
    """Normalise per channel, (x/255 - mean) / std, in one conversion and two in-place passes."""
    scale = torch.tensor([1 / (255 * s) for s in data.std], device=device).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(data.mean, data.std, strict=True)], device=device)

    def tensors(x: np.ndarray, y: np.ndarray) -> Split:
        with warnings.catch_warnings():  # read-only arrays (Ray's object store) are copied right here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            images = torch.from_numpy(x).to(device=device, dtype=torch.float32)
            labels = torch.from_numpy(y).to(device=device, dtype=torch.long)
        return Split(images.mul_(scale).add_(shift.view(1, -1, 1, 1)), labels)

    return DeviceDataset(
        tensors(data.train_x, data.train_y), tensors(data.test_x, data.test_y), data.num_classes
    )


def make_splits(
    data: ArrayDataset | DeviceDataset, spec: DatasetSpec, seed: int, device: torch.device | str = "cpu"
) -> Splits:
    """Subset (the first N samples), validation split drawn from the seed, and the test set."""
    if isinstance(data, ArrayDataset):
        data = to_device(data, device)
    device = data.train.x.device
    n_train = min(spec.subset or len(data.train), len(data.train))
    n_test = min(spec.test_subset or len(data.test), len(data.test))
    n_val = round(spec.val_fraction * n_train)
    if n_train - n_val < 1:
        raise DataError(f"dataset.val_fraction: {spec.val_fraction} leaves no training samples of {n_train}")
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed)).to(device)

    def pick(index: torch.Tensor) -> Split:
        return Split(data.train.x.index_select(0, index), data.train.y.index_select(0, index))

    return Splits(
        train=pick(order[n_val:]),
        val=pick(order[:n_val]),
        test=Split(data.test.x[:n_test], data.test.y[:n_test]),
        num_classes=data.num_classes,
    )
