"""The user's own images (image_folder) and SVHN: shapes, labels and channels as asked, the shape known before
loading, one-line errors that name the path, and a trial trained from a folder through `sweep train`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sweep.core.data import SHAPES, dataset_shape, dataset_sizes, load_arrays, make_splits
from sweep.errors import DataError
from sweep.plans.grid import dense_reference, same_capacity_widths
from sweep.spec import DatasetSpec, parse_trial

from .conftest import write_spec

CLASSES = ("cat", "ant", "bee")  # labels follow the sorted names: ant 0, bee 1, cat 2
# (Pillow mode, size, file name): every image a different size or mode, some suffixes in capitals
IMAGES = [
    ("RGB", (5, 9), "a.png"),
    ("L", (12, 12), "b.PNG"),
    ("RGBA", (8, 3), "c.png"),
    ("P", (16, 10), "d.gif"),
    ("LA", (7, 7), "e.png"),
    ("RGB", (20, 11), "f.JPG"),
]


def image(path, mode: str, size: tuple[int, int], colour: int) -> None:
    rng = np.random.default_rng(colour)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)


def image_folder(root, n_train: int = 6, n_test: int = 2):
    """3 classes × `n_train` train and `n_test` test images, plus files the reader must skip."""
    for part, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(CLASSES):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i, (mode, size, file) in enumerate(IMAGES[:n]):
                image(folder / file, mode, size, 10 * c + i)
            (folder / "notes.txt").write_text("not an image")
            (folder / ".hidden.png").write_bytes(b"not an image either")
        (root / part / ".cache").mkdir()  # a hidden folder is not a class
    return root


def spec(root, **fields) -> DatasetSpec:
    data_dir = None if root is None else str(root)
    return DatasetSpec(**{"name": "image_folder", "data_dir": data_dir, "image_size": 8, **fields})


@pytest.fixture
def folder(tmp_path):
    return image_folder(tmp_path / "images")


@pytest.mark.parametrize(("channels", "c"), [("grey", 1), ("rgb", 3), ("rgba", 4), (None, 3)])
def test_images_are_read_converted_and_resized(folder, channels, c):
    data = load_arrays(spec(folder, channels=channels))
    assert data.train_x.shape == (18, c, 8, 8) and data.test_x.shape == (6, c, 8, 8)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert data.train_x.flags.c_contiguous
    assert data.train_y.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert data.test_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.num_classes == 3 and len(data.mean) == c and all(s > 0 for s in data.std)
    assert dataset_shape(spec(folder, channels=channels)) == (data.input_shape, data.num_classes)
    splits = make_splits(data, spec(folder, channels=channels, val_fraction=0.25), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (14, 4, 6)
    assert dataset_sizes(spec(folder, channels=channels, val_fraction=0.25)) == (14, 4, 6)  # from the listing
    assert splits.train.x.isfinite().all()  # rgba: the opaque images' alpha is constant, and only centred


def test_pixels_keep_their_colour_through_conversion_and_resizing(tmp_path):
    for part in ("train", "test"):
        (tmp_path / part / "red").mkdir(parents=True)
        Image.new("RGB", (5, 9), (255, 0, 0)).save(tmp_path / part / "red" / "x.bmp")
    grey, rgba = (load_arrays(spec(tmp_path, channels=c)).train_x[0] for c in ("grey", "rgba"))
    assert (grey == 76).all()  # Pillow's L: 299/1000 of red
    assert [int(rgba[k].min()) for k in range(4)] == [255, 0, 0, 255]
    assert [int(rgba[k].max()) for k in range(4)] == [255, 0, 0, 255]


def remove(path) -> None:
    for child in path.iterdir():
        remove(child) if child.is_dir() else child.unlink()
    path.rmdir()


def no_images(root) -> str:
    for _, _, file in IMAGES:  # notes.txt and .hidden.png stay
        (root / "train" / "bee" / file).unlink()
    return f"{root / 'train' / 'bee'} has no images (allowed: .bmp, .gif, .jpeg, .jpg, .png,"


def unreadable(root) -> str:
    (root / "test" / "cat" / "broken.jpeg").write_bytes(b"\xff\xd8 not a jpeg")
    return f"cannot read the image {root / 'test' / 'cat' / 'broken.jpeg'} ("


def other_classes(root) -> str:
    (root / "test" / "cat").rename(root / "test" / "dog")
    return "only in train: cat; only in test: dog"


def missing(part: str):
    def change(root) -> str:
        remove(root / part)
        return f"{root / part} is missing"

    return change


def no_classes(root) -> str:
    for name in CLASSES:
        remove(root / "train" / name)
    return f"{root / 'train'} has no class sub-folders"


@pytest.mark.parametrize(
    "change",
    [missing("train"), missing("test"), no_classes, no_images, unreadable, other_classes],
    ids=["no-train", "no-test", "no-classes", "no-images", "unreadable", "other-classes"],
)
def test_a_bad_folder_is_one_line_that_names_the_path(folder, change):
    expected = change(folder)
    with pytest.raises(DataError) as info:
        load_arrays(spec(folder))
    message = str(info.value)
    assert message.startswith("dataset.data_dir: ") and expected in message and "\n" not in message
    if change not in (no_images, unreadable):  # the listing alone finds it, before anything is read
        with pytest.raises(DataError, match=r"^dataset\.data_dir: "):
            dataset_shape(spec(folder))
    else:
        assert dataset_shape(spec(folder)) == ((3, 8, 8), 3)


def test_the_folder_and_the_size_must_be_given(tmp_path, folder):
    cases = [
        (spec(folder, image_size=None), "dataset.image_size: not set; give the size images are resized to"),
        (spec(None), "dataset.data_dir: not set; image_folder needs the folder that holds train/<class>/"),
        (spec(tmp_path / "nowhere"), f"dataset.data_dir: {tmp_path / 'nowhere'} does not exist"),
    ]
    for dataset, expected in cases:
        for read in (load_arrays, dataset_shape):
            with pytest.raises(DataError) as info:
                read(dataset)
            assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_the_dense_reference_counts_weights_with_the_folders_shape(folder):
    config = parse_trial(
        {
            "dataset": {"name": "image_folder", "data_dir": str(folder), "image_size": 8, "channels": "grey"},
            "model": {"widths": [40, 20], "densities": 0.5},
        }
    )
    reference = dense_reference(config)
    model = config.model
    target = round(0.5 * 64 * 40) + round(0.5 * 40 * 20) + round(0.5 * 20 * 3)
    assert list(reference.model.widths) == same_capacity_widths(model, (1, 8, 8), 3, target)


def test_svhn_without_its_files_is_one_line(tmp_path):
    assert SHAPES["svhn"] == ((3, 32, 32), 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        load_arrays(DatasetSpec(name="svhn", data_dir=str(tmp_path / "empty")))
    message = str(info.value)
    assert message.startswith(
        f"dataset svhn: not found under {tmp_path / 'empty'}; set dataset.download: true"
    )
    assert "SVHN files" in message and "\n" not in message


def test_svhn_is_read_from_torchvisions_files(tmp_path, monkeypatch):
    from scipy.io import savemat
    from torchvision import datasets

    monkeypatch.setattr(datasets.SVHN, "_check_integrity", lambda self: True)  # tiny stand-in files
    rng = np.random.default_rng(0)
    for file, n in (("train_32x32.mat", 12), ("test_32x32.mat", 5)):
        labels = (np.arange(n) % 10 + 1).reshape(n, 1)  # SVHN's files call the digit 0 "10"
        savemat(tmp_path / file, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels})
    data = load_arrays(DatasetSpec(name="svhn", data_dir=str(tmp_path)))
    assert data.train_x.shape == (12, 3, 32, 32) and data.test_x.shape == (5, 3, 32, 32)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert data.train_y.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]
    assert SHAPES["svhn"][0] == data.input_shape


def folder_spec(path, data_dir) -> str:
    return write_spec(
        path,
        f"name: x\nkind: single\n"
        f"dataset: {{name: image_folder, data_dir: '{data_dir}', image_size: 8, channels: grey}}\n"
        "model: {family: mlp, widths: [16]}\ntrain: {epochs: 1, batch_size: 8}\negf: {samples: 8}\n",
    )


def test_sweep_train_trains_on_an_image_folder(cli, tmp_path, folder):
    results = tmp_path / "r"
    result = cli("train", folder_spec(tmp_path / "x.yaml", folder), "--results", results)
    assert result.code == 0, result.err
    assert list((results / "trials" / "sweep=x").glob("part-*.parquet"))


def test_sweep_train_on_an_empty_folder_is_one_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("train", folder_spec(tmp_path / "x.yaml", tmp_path / "empty"), "--results", tmp_path / "r")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip().splitlines() == [
        f"sweep: error: dataset.data_dir: {tmp_path / 'empty' / 'train'} is missing; "
        "image_folder needs train/<class>/ and test/<class>/ sub-folders of images"
    ]
    assert not (tmp_path / "r" / "trials").exists()
