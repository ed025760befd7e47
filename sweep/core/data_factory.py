"""The user's own data: `dataset: {name: factory, factory: "package.module:function", kwargs: {...}}`.

The function is called with the kwargs (in the driver, once a sweep: the arrays then travel to the workers as
every data set's do) and returns either four arrays or tensors `(train_x, train_y, test_x, test_y)` or two
`torch.utils.data.Dataset`s `(train, test)` of (image, label) items. Images are N×C×H×W (N×H×W for one
channel; a Dataset's items C×H×W or H×W tensors or arrays, or PIL images), as uint8 or as floats in [0, 1],
which are held as 8-bit like every data set here and normalised per channel. Labels are the integers
0..classes-1. Whatever does not fit is one line that names `dataset.factory`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from sweep.errors import DataError, first_line
from sweep.spec import DatasetSpec
from sweep.spec.factory_source import factory_function, factory_source

FIELD = "dataset.factory"
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def read_factory(spec: DatasetSpec) -> Arrays:
    """The factory's data as uint8 images N×C×H×W and int64 labels, train then test (read once per edit of
    the factory's code and kwargs)."""
    if not spec.factory:
        raise DataError(f"{FIELD}: not set; dataset.name factory needs 'package.module:function'")
    return _read(spec.factory, json.dumps(spec.kwargs, sort_keys=True), factory_source(spec.factory))


def factory_shape(spec: DatasetSpec) -> tuple[tuple[int, int, int], int]:
    """The images' shape (C, H, W) and the number of classes (the largest label + 1)."""
    train_x, train_y, _, test_y = read_factory(spec)
    return tuple(train_x.shape[1:]), int(max(train_y.max(), test_y.max())) + 1  # type: ignore[return-value]


def factory_sizes(spec: DatasetSpec) -> tuple[int, int]:
    train_x, _, test_x, _ = read_factory(spec)
    return len(train_x), len(test_x)


@functools.lru_cache(maxsize=1)
def _read(path: str, kwargs: str, _source: str) -> Arrays:
    function = factory_function(path, FIELD)
    try:
        made = function(**json.loads(kwargs))
    except Exception as exc:  # the user's code: its error, in one line
        raise DataError(f"{FIELD}: {path} raised {type(exc).__name__}: {first_line(exc)}") from None
    if isinstance(made, tuple | list) and len(made) == 2 and all(hasattr(d, "__getitem__") for d in made):
        parts = (*_from_dataset(made[0], "train"), *_from_dataset(made[1], "test"))
    elif isinstance(made, tuple | list) and len(made) == 4:
        names = ("train_x", "train_y", "test_x", "test_y")
        parts = tuple(
            (_images if name.endswith("x") else _labels)(_array(v, name), name)
            for v, name in zip(made, names, strict=True)
        )
    else:
        raise DataError(
            f"{FIELD}: {path} returned {type(made).__name__}; return (train_x, train_y, test_x, test_y) "
            "as arrays or tensors, or (train, test) as torch Datasets of (image, label)"
        )
    train_x, train_y, test_x, test_y = parts
    for x, y, part in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if len(x) != len(y) or not len(x):
            raise DataError(f"{FIELD}: the {part} part has {len(x)} images and {len(y)} labels")
    if train_x.shape[1:] != test_x.shape[1:]:
        shapes = " and ".join("×".join(map(str, x.shape[1:])) for x in (train_x, test_x))
        raise DataError(f"{FIELD}: train and test images differ in shape ({shapes})")
    return parts  # type: ignore[return-value]


def _from_dataset(dataset: Any, part: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        items = [dataset[i] for i in range(len(dataset))]
        images = np.stack([_item_image(item[0]) for item in items])
        labels = np.array([int(item[1]) for item in items])
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{FIELD}: the {part} Dataset's items are not (image, label): {first_line(exc)}"
        ) from None
    return _images(images, f"the {part} Dataset's images"), _labels(labels, f"the {part} Dataset's labels")


def _item_image(image: Any) -> np.ndarray:
    """One item's image as C×H×W (a PIL image's H×W×C turned, an H×W one given its channel)."""
    if hasattr(image, "getbands"):  # a PIL image
        pixels = np.asarray(image)
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    pixels = _array(image, "an image")
    return pixels[None] if pixels.ndim == 2 else pixels


def _array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, wherever it lives
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception:
        raise DataError(f"{FIELD}: {name} is a {type(value).__name__}, not an array or tensor") from None


def _images(x: np.ndarray, name: str) -> np.ndarray:
    """N×C×H×W uint8: uint8 as it is, floats in [0, 1] and integers in 0..255 as 8-bit."""
    x = x[:, None] if x.ndim == 3 else x
    if x.ndim != 4:
        raise DataError(f"{FIELD}: {name} has shape {'×'.join(map(str, x.shape))}; give N×C×H×W or N×H×W")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    numeric = np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    low, high = (float(x.min()), float(x.max())) if numeric and x.size else (0.0, 0.0)
    if np.issubdtype(x.dtype, np.floating) and np.isfinite(x).all() and low >= 0 and high <= 1:
        return np.rint(x * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and low >= 0 and high <= 255:
        return x.astype(np.uint8)
    held = f"{x.dtype} from {low:g} to {high:g}" if numeric else str(x.dtype)
    raise DataError(f"{FIELD}: {name} holds {held}; give uint8 pixels or floats in [0, 1]")


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        shape = "×".join(map(str, y.shape))
        raise DataError(f"{FIELD}: {name} must be integer class indices 0, 1, ... (got {y.dtype} {shape})")
    return y.astype(np.int64)
