"""The user's own images: `<data_dir>/train/<class>/*` and `<data_dir>/test/<class>/*`, one sub-folder per
class (labels are the class names, sorted). Pillow decodes each image, converts it to `dataset.channels`
and resizes it to `dataset.image_size` square, so that every image has one shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweep.errors import DataError
from sweep.spec import DatasetSpec

SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
MODES = {"grey": "L", "rgb": "RGB", "rgba": "RGBA"}  # `dataset.channels` → Pillow's mode
CHANNELS = {"grey": 1, "rgb": 3, "rgba": 4}
_LAYOUT = "train/<class>/ and test/<class>/ sub-folders of images"


def folder_shape(spec: DatasetSpec) -> tuple[tuple[int, int, int], int]:
    """The input shape (C, H, W) and the number of classes, from the spec and the folder listing only."""
    size = _image_size(spec)
    return (CHANNELS[spec.channels or "rgb"], size, size), len(folder_classes(spec))


def folder_classes(spec: DatasetSpec) -> list[str]:
    """The class names, sorted, after checking that train/ and test/ hold the same class sub-folders."""
    root = _root(spec)
    train, test = (_classes(_part(root, part)) for part in ("train", "test"))
    if train != test:
        only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
        differ = "; ".join(
            f"only in {part}: {', '.join(names)}"
            for part, names in (("train", only_train), ("test", only_test))
            if names
        )
        raise DataError(
            f"dataset.data_dir: the class sub-folders of {root / 'train'} and {root / 'test'} differ "
            f"({differ}); give both parts the same classes"
        )
    return train


def folder_sizes(spec: DatasetSpec) -> tuple[int, int]:
    """How many images train/ and test/ hold, from the listing only."""
    root = _root(spec)
    classes = folder_classes(spec)
    return tuple(sum(len(_images(root / part / name)) for name in classes) for part in ("train", "test"))


def read_image_folder(spec: DatasetSpec) -> tuple[np.ndarray, ...]:
    """Every image of train/ then test/, as uint8 N×C×H×W with int64 labels (the class's sorted index)."""
    size, mode, channels = _image_size(spec), MODES[spec.channels or "rgb"], CHANNELS[spec.channels or "rgb"]
    classes = folder_classes(spec)
    root = _root(spec)
    arrays: list[np.ndarray] = []
    for part in ("train", "test"):
        files = [(label, path) for label, name in enumerate(classes) for path in _images(root / part / name)]
        x = np.empty((len(files), size, size, channels), dtype=np.uint8)
        for i, (_, path) in enumerate(files):
            x[i] = _decode(path, mode, size).reshape(size, size, channels)
        y = np.fromiter((label for label, _ in files), dtype=np.int64, count=len(files))
        arrays += [np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y]
    return tuple(arrays)


def _image_size(spec: DatasetSpec) -> int:
    if spec.image_size is None:
        raise DataError(
            "dataset.image_size: not set; give the size images are resized to "
            "(image_folder resizes every image to image_size × image_size)"
        )
    return spec.image_size


def _root(spec: DatasetSpec) -> Path:
    if not spec.data_dir:
        raise DataError(f"dataset.data_dir: not set; image_folder needs the folder that holds {_LAYOUT}")
    root = Path(spec.data_dir).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"dataset.data_dir: {root} {what}; give the folder that holds {_LAYOUT}")
    return root


def _part(root: Path, part: str) -> Path:
    folder = root / part
    if not folder.is_dir():
        raise DataError(f"dataset.data_dir: {folder} is missing; image_folder needs {_LAYOUT}")
    return folder


def _classes(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(
            f"dataset.data_dir: {folder} has no class sub-folders; "
            "put each class's images in a sub-folder named after the class"
        )
    return names


def _images(folder: Path) -> list[Path]:
    files = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in SUFFIXES and p.is_file()
    )
    if not files:
        raise DataError(f"dataset.data_dir: {folder} has no images (allowed: {', '.join(SUFFIXES)})")
    return files


def _decode(path: Path, mode: str, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            converted = image.convert(mode)
        return np.asarray(converted.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            f"dataset.data_dir: cannot read the image {path} ({reason}); remove it or replace it"
        ) from None
