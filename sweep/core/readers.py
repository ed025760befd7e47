"""Readers of the fixed data sets' files: IDX (Fashion-MNIST, read here), torchvision's downloads (MNIST,
CIFAR, SVHN) and the synthetic set. Each returns uint8 images N×C×H×W and int64 labels, train then test.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sweep.errors import DataError
from sweep.spec import DatasetSpec

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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


def check_data_dir(spec: DatasetSpec) -> None:
    """A folder the user named must exist (with `download: true` it is where the download goes)."""
    root = Path(spec.data_dir).expanduser()
    if spec.download or root.is_dir():
        return
    what = "is not a folder" if root.exists() else "does not exist"
    raise DataError(
        f"dataset.data_dir: {root} {what}; give the folder that holds the {spec.name} files, "
        "set dataset.download: true to download them there, or leave data_dir out"
    )


def read_fashion_mnist(spec: DatasetSpec) -> Arrays:
    """Fashion-MNIST's IDX files: from `data_dir` if given (and nothing else), else Debian's copy."""
    folders = []
    if spec.data_dir:  # the user's folder, and nothing else: never a silent fall-back to another copy
        root = Path(spec.data_dir).expanduser()
        folders += [root, root / "FashionMNIST" / "raw"]
    else:
        folders.append(DEBIAN_FASHION_MNIST)
    if spec.download:
        root = download_root(spec)
        folder = root / "FashionMNIST" / "raw"
        if _idx_files(folder) is None:
            _torchvision_download("fashion_mnist", root)
        folders.append(folder)
    for folder in folders:
        files = _idx_files(folder)
        if files is not None:
            arrays = [read_idx(files[key]) for key in ("train_x", "train_y", "test_x", "test_y")]
            for key, images in (("train_x", arrays[0]), ("test_x", arrays[2])):
                if images.dtype != np.uint8:
                    raise DataError(
                        f"dataset.data_dir: {files[key]} holds {images.dtype} pixels; Fashion-MNIST's images "
                        "are unsigned bytes (IDX type 0x08)"
                    )
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


# ---------------------------------------------------------------------------------------- torchvision


def download_root(spec: DatasetSpec) -> Path:
    """Where torchvision's files are read from and downloaded to: `data_dir`, else the user's cache."""
    if spec.data_dir:
        return Path(spec.data_dir).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "sparse-sweep" / "data"


def _torchvision_class(name: str) -> Callable[..., object]:
    """The torchvision data set class, called as `(root=..., train=..., download=...)` for every name."""
    from torchvision import datasets

    if name == "svhn":  # SVHN names its parts by `split`

        def svhn(root: str, train: bool, download: bool = False) -> object:
            return datasets.SVHN(root=root, split="train" if train else "test", download=download)

        svhn.__name__ = "SVHN"
        return svhn
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


def read_torchvision(spec: DatasetSpec) -> Arrays:
    """MNIST, CIFAR-10/100 and SVHN from torchvision's files under `download_root` (downloaded if asked)."""
    root = download_root(spec)
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
        if spec.name == "svhn":  # already N×C×H×W
            return np.ascontiguousarray(x)
        return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)

    def labels(ds: object) -> np.ndarray:
        return np.asarray(ds.labels if spec.name == "svhn" else ds.targets, dtype=np.int64)

    return images(train), labels(train), images(test), labels(test)


# ------------------------------------------------------------------------------------------ synthetic


def read_synthetic() -> Arrays:
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
