"""Data sets as whole tensors on the trial's device.

Loading has three steps. `load_arrays` reads a data set once (uint8 NumPy arrays, N×C×H×W); that is the
part a Ray node shares between trials. `to_device` turns the arrays into normalised float tensors on a
device (once per process). `make_splits` takes the subset, the validation split (drawn from the trial's
seed) and the test set from those tensors.
"""

from __future__ import annotations

import gzip
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sweep.errors import DataError
from sweep.spec import DatasetSpec

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Each data set's image shape (C, H, W) and number of classes, known before any file is read (plans count
# weights with them; a test checks them against the loaded data).
SHAPES = {
    "fashion_mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "synthetic": ((1, 12, 12), 10),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


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


def load_splits(spec: DatasetSpec, seed: int, device: torch.device | str = "cpu") -> Splits:
    return make_splits(load_arrays(spec), spec, seed, device)


def load_arrays(spec: DatasetSpec) -> ArrayDataset:
    """Read the whole data set named by the spec (subsets are taken later, in `make_splits`)."""
    if spec.data_dir and spec.name != "synthetic":
        _check_data_dir(spec)
    if spec.name == "fashion_mnist":
        train_x, train_y, test_x, test_y = _fashion_mnist(spec)
    elif spec.name == "synthetic":
        train_x, train_y, test_x, test_y = _synthetic()
    else:
        train_x, train_y, test_x, test_y = _torchvision(spec)
    stats = (
        train_x.mean(axis=(0, 2, 3), dtype=np.float64) / 255,
        train_x.std(axis=(0, 2, 3), dtype=np.float64) / 255,
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


# ------------------------------------------------------------------------------------------------ IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or plain."""
    path = Path(path)
    with path.open("rb") as handle:
        magic = handle.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset < count * dtype.itemsize:
        raise DataError(
            f"{path}: truncated IDX file ({len(raw) - offset} bytes of data, {count} values expected)"
        )
    return (
        np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def _check_data_dir(spec: DatasetSpec) -> None:
    """A folder the user named must exist (with `download: true` it is where the download goes)."""
    root = Path(spec.data_dir).expanduser()
    if spec.download or root.is_dir():
        return
    what = "is not a folder" if root.exists() else "does not exist"
    raise DataError(
        f"dataset.data_dir: {root} {what}; give the folder that holds the {spec.name} files, "
        "set dataset.download: true to download them there, or leave data_dir out"
    )


def _fashion_mnist(spec: DatasetSpec) -> tuple[np.ndarray, ...]:
    folders = []
    if spec.data_dir:  # the user's folder, and nothing else: never a silent fall-back to another copy
        root = Path(spec.data_dir).expanduser()
        folders += [root, root / "FashionMNIST" / "raw"]
    else:
        folders.append(DEBIAN_FASHION_MNIST)
    if spec.download:
        root = _download_root(spec)
        folder = root / "FashionMNIST" / "raw"
        if _idx_files(folder) is None:
            _torchvision_download("fashion_mnist", root)
        folders.append(folder)
    for folder in folders:
        files = _idx_files(folder)
        if files is not None:
            arrays = [read_idx(files[key]) for key in ("train_x", "train_y", "test_x", "test_y")]
            return (
                arrays[0][:, None],
                arrays[1].astype(np.int64),
                arrays[2][:, None],
                arrays[3].astype(np.int64),
            )
    searched = ", ".join(str(f) for f in folders)
    if spec.data_dir:
        raise DataError(
            f"dataset.data_dir: no Fashion-MNIST IDX files in {searched}; put the four files "
            f"({', '.join(_FASHION_FILES.values())}, gzipped or not) there, set dataset.download: true "
            f"(needs internet), or leave data_dir out to use {DEBIAN_FASHION_MNIST}"
        )
    raise DataError(
        f"dataset fashion_mnist: IDX files not found (looked in {searched}); "
        "run 'apt-get install dataset-fashion-mnist' (or 'make data'), "
        "or set dataset.data_dir to a folder with the four IDX files, "
        "or set dataset.download: true (needs internet)"
    )


def _idx_files(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in _FASHION_FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            return None
        found[key] = existing[0]
    return found


def _download_root(spec: DatasetSpec) -> Path:
    if spec.data_dir:
        return Path(spec.data_dir).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "sparse-sweep" / "data"


def _torchvision_class(name: str):
    from torchvision import datasets

    return {
        "fashion_mnist": datasets.FashionMNIST,
        "mnist": datasets.MNIST,
        "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100,
    }[name]


def _torchvision_download(name: str, root: Path) -> None:
    try:
        _torchvision_class(name)(root=str(root), train=True, download=True)
        _torchvision_class(name)(root=str(root), train=False, download=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"dataset {name}: download to {root} failed ({exc}); check the internet connection, "
            "or place the files there by hand"
        ) from None


def _torchvision(spec: DatasetSpec) -> tuple[np.ndarray, ...]:
    root = _download_root(spec)
    if spec.download:
        _torchvision_download(spec.name, root)
    cls = _torchvision_class(spec.name)
    try:
        train, test = cls(root=str(root), train=True), cls(root=str(root), train=False)
    except RuntimeError:
        raise DataError(
            f"dataset {spec.name}: not found under {root}; set dataset.download: true (needs internet) "
            f"or dataset.data_dir to the folder that holds torchvision's {cls.__name__} files"
        ) from None

    def images(ds: object) -> np.ndarray:
        x = np.asarray(ds.data)
        return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)

    def labels(ds: object) -> np.ndarray:
        return np.asarray(ds.targets, dtype=np.int64)

    return images(train), labels(train), images(test), labels(test)


def _synthetic() -> tuple[np.ndarray, ...]:
    """A small, learnable, deterministic set (10 classes of noisy 12×12 prototypes) for fast tests."""
    rng = np.random.default_rng(1234)
    prototypes = rng.uniform(0, 255, size=(10, 1, 12, 12))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, size=n)
        x = prototypes[y] + rng.normal(0, 90, size=(n, 1, 12, 12))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    train_x, train_y = draw(2000)
    test_x, test_y = draw(500)
    return train_x, train_y, test_x, test_y
