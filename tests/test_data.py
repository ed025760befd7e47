"""Data: our IDX reader, real Fashion-MNIST, splits from the seed, and offline errors that say the fix."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

import sweep.core.readers as readers_module
from sweep.core.data import channel_statistics, load_arrays, make_splits, read_idx
from sweep.core.data_facts import SIZES
from sweep.errors import DataError
from sweep.spec import DatasetSpec

from .conftest import write_spec


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, ">i4", ">f4"])
def test_idx_reader_roundtrip(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 4) * 7 % 251).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(path, array, compress)
    read = read_idx(path)
    assert read.shape == (2, 3, 4)
    np.testing.assert_array_equal(read, array)


def test_idx_reader_rejects_other_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    write_idx(tmp_path / "short", np.zeros((10, 2), np.uint8), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")


def tiny_fashion(folder, n_train=40, n_test=10, compress=False) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{stem}-images-idx3-ubyte{suffix}",
            rng.integers(0, 256, (n, 6, 6)).astype(np.uint8),
            compress,
        )
        write_idx(
            folder / f"{stem}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8), compress
        )


def test_fashion_loader_reads_data_dir_first(tmp_path):
    tiny_fashion(tmp_path / "fm")
    arrays = load_arrays(DatasetSpec(name="fashion_mnist", data_dir=str(tmp_path / "fm")))
    assert arrays.train_x.shape == (40, 1, 6, 6) and arrays.test_x.shape == (10, 1, 6, 6)
    assert arrays.num_classes == 10 and arrays.train_y.dtype == np.int64


def test_real_fashion_mnist(fashion):
    assert fashion.train_x.shape == (60_000, 1, 28, 28)
    assert fashion.test_x.shape == (10_000, 1, 28, 28)
    assert SIZES["fashion_mnist"] == (len(fashion.train_y), len(fashion.test_y))
    assert fashion.num_classes == 10
    assert sorted(np.unique(fashion.train_y)) == list(range(10))
    assert fashion.mean[0] == pytest.approx(0.286, abs=1e-3)


def test_channel_statistics_are_exact_and_make_no_float_copy_of_the_images():
    """Each channel's mean and std on the [0, 1] scale, as a float64 two-pass over the pixels gives them; a
    constant channel is only centred (std 1); and the images are not copied as floats on the way."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(500, 3, 9, 7), dtype=np.uint8)
    images[:, 2] = 200  # an opaque alpha channel
    mean, std = channel_statistics(images)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64) / 255
    assert mean == pytest.approx(tuple(pixels.mean(axis=1)), rel=1e-15)
    assert std[:2] == pytest.approx(tuple(pixels[:2].std(axis=1)), rel=1e-15) and std[2] == 1.0
    assert channel_statistics(np.array([0, 255], dtype=np.uint8).reshape(2, 1, 1, 1)) == ((0.5,), (0.5,))


def test_channel_statistics_take_less_memory_than_the_images_themselves():
    """Peak memory, every allocator counted (numpy's and torch's): a float64 copy of the images would be 8
    times their size and an int64 copy of each channel twice; one channel's bytes, for its counts, is what it
    takes (the allocator may hold a second for a moment)."""
    probe = """
import resource
import numpy as np
from sweep.core.data import channel_statistics
images = np.full((2000, 4, 100, 100), 7, dtype=np.uint8)  # 80 MB
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
channel_statistics(images)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / images.nbytes)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 1, done.stdout  # a channel is a quarter of these images


def test_images_that_are_not_bytes_are_a_data_error(tmp_path):
    tiny_fashion(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "train-images-idx3-ubyte", np.zeros((40, 6, 6), dtype=">f4"), False)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds float32 pixels.*unsigned bytes"):
        load_arrays(DatasetSpec(name="fashion_mnist", data_dir=str(tmp_path / "fm")))


def test_splits_from_the_seed(synthetic):
    spec = DatasetSpec(name="synthetic", val_fraction=0.2, subset=1000, test_subset=100)
    a, b, c = (make_splits(synthetic, spec, seed) for seed in (0, 0, 1))
    assert (len(a.train), len(a.val), len(a.test)) == (800, 200, 100)
    assert torch.equal(a.val.y, b.val.y) and torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.val.x, c.val.x)
    assert torch.equal(a.test.x, c.test.x)  # the test set never depends on the seed
    whole = make_splits(synthetic, DatasetSpec(name="synthetic", val_fraction=0.0), 0)
    assert len(whole.val) == 0
    assert whole.train.x.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert whole.train.x.std().item() == pytest.approx(1.0, abs=1e-2)


def test_missing_fashion_says_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(readers_module, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(DataError) as info:
        load_arrays(DatasetSpec(name="fashion_mnist"))
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert "dataset.download: true" in str(info.value)


def test_missing_torchvision_data_offline_via_cli(cli, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "name: m\ndataset: {name: mnist}\ntrain: {epochs: 1}\n")
    (tmp_path / "empty").mkdir()
    result = cli(
        "train", spec, "--set", f"dataset.data_dir={tmp_path / 'empty'}", "--results", tmp_path / "r"
    )
    assert result.code == 2
    assert "dataset mnist: not found under" in result.err
    assert "set dataset.download: true" in result.err
    assert "Traceback" not in result.err


def test_a_data_dir_that_is_not_there_is_an_error_not_a_fall_back(cli, tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "name: d\ntrain: {epochs: 1}\n")
    for name in ("fashion_mnist", "mnist"):
        nowhere = tmp_path / "nowhere"
        result = cli(
            "train",
            spec,
            "--set",
            f"dataset.name={name}",
            "--set",
            f"dataset.data_dir={nowhere}",
            "--results",
            tmp_path / "r",
        )
        assert result.code == 2, result.out
        assert result.err.strip() == (
            f"sweep: error: dataset.data_dir: {nowhere} does not exist; give the folder that holds the "
            f"{name} files, set dataset.download: true to download them there, or leave data_dir out"
        )
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DataError, match="a-file is not a folder"):
        load_arrays(DatasetSpec(data_dir=str(tmp_path / "a-file")))


def test_a_data_dir_without_the_files_never_reads_another_copy(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:  # even where the system copy is installed
        load_arrays(DatasetSpec(name="fashion_mnist", data_dir=str(tmp_path / "empty")))
    message = str(info.value)
    assert message.startswith(f"dataset.data_dir: no Fashion-MNIST IDX files in {tmp_path / 'empty'}")
    assert "train-images-idx3-ubyte" in message and "leave data_dir out to use" in message
    tiny_fashion(tmp_path / "fm" / "FashionMNIST" / "raw")  # torchvision's layout under data_dir works too
    assert load_arrays(DatasetSpec(data_dir=str(tmp_path / "fm"))).train_x.shape == (40, 1, 6, 6)
