"""What is known of a data set before its images are read: the image shape and the number of classes, and
how many samples each split gets (the fixed data sets' sizes; an image folder's, from its listing; a
factory's data is read for them). Plans
count weights with the shapes, and `sweep run --dry-run` prints both; tests check them against loaded data."""

from __future__ import annotations

from sweep.core.data_factory import factory_shape, factory_sizes
from sweep.core.image_folder import folder_shape, folder_sizes
from sweep.errors import DataError
from sweep.spec import DatasetSpec

SHAPES = {  # (C, H, W), classes
    "fashion_mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "svhn": ((3, 32, 32), 10),
    "synthetic": ((1, 12, 12), 10),
}
SIZES = {  # (training samples, test samples) as published (SVHN: without its `extra` part)
    "fashion_mnist": (60_000, 10_000),
    "mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "svhn": (73_257, 26_032),
    "synthetic": (2_000, 500),
}


def dataset_shape(spec: DatasetSpec) -> tuple[tuple[int, int, int], int]:
    """The input shape (C, H, W) and the number of classes, before the data is read (image_folder: from
    `channels`, `image_size` and the class sub-folders' names; a bad folder is a `DataError` here)."""
    if spec.factory and spec.name != "factory":
        raise DataError(f"dataset.factory: set for dataset.name {spec.name}; it is for name factory only")
    if spec.name == "image_folder":
        return folder_shape(spec)
    return factory_shape(spec) if spec.name == "factory" else SHAPES[spec.name]


def dataset_sizes(spec: DatasetSpec) -> tuple[int, int, int]:
    """How many samples a trial trains on, validates on and tests on (after `subset`, `test_subset` and
    `val_fraction`), before the data is read."""
    sizes = {"image_folder": folder_sizes, "factory": factory_sizes}.get(spec.name)
    train, test = sizes(spec) if sizes else SIZES[spec.name]
    n_train, n_test, n_val = split_sizes(spec, train, test)
    return n_train - n_val, n_val, n_test


def split_sizes(spec: DatasetSpec, train: int, test: int) -> tuple[int, int, int]:
    """The training subset, the test subset and the validation share of the training subset."""
    n_train, n_test = min(spec.subset or train, train), min(spec.test_subset or test, test)
    n_val = round(spec.val_fraction * n_train)
    if n_train - n_val < 1:
        raise DataError(f"dataset.val_fraction: {spec.val_fraction} leaves no training samples of {n_train}")
    return n_train, n_test, n_val
