"""The user's own data (`dataset: {name: factory, factory: "module:function"}`): a module the test writes
returns tensors or torch Datasets; it trains through `sweep train`, `--dry-run` gives its shape and sizes, an
edited factory is another trial key, and data that does not fit is one line naming `dataset.factory`."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import yaml

from sweep.core.data import load_arrays
from sweep.spec import DatasetSpec, parse_trial

from .conftest import write_spec

TENSORS = """
import torch

def make(n_train=40, n_test=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    def part(n):
        y = torch.arange(n) % 3
        x = (y.view(-1, 1, 1) / 3 + torch.rand(n, 8, 8, generator=g) / 4).clamp(0, 1)  # N×H×W in [0, 1]
        return x, y
    return (*part(n_train), *part(n_test))
"""

DATASETS = """
import numpy as np
import torch
from PIL import Image

class Tensors(torch.utils.data.Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(n)
        self.x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], i % 2

class Pictures(Tensors):
    def __getitem__(self, i):
        return Image.fromarray(self.x[i].permute(1, 2, 0).numpy(), "RGB"), torch.tensor(i % 2)

def make():
    return Tensors(10), Pictures(4)
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Writes a module under a name of its own (imports are cached by name) in the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str, name: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return f"{name}:make"

    return write


def factory_spec(path, factory: str, **kwargs) -> str:
    dataset = {"name": "factory", "factory": factory, "kwargs": kwargs, "val_fraction": 0.2}
    spec = {"name": "own", "kind": "single", "dataset": dataset, "model": {"widths": [16], "densities": 0.5}}
    spec["train"], spec["egf"] = {"epochs": 1, "batch_size": 8}, {"samples": 8}
    return str(write_spec(path, yaml.safe_dump(spec)))


def test_tensors_from_a_factory_train_and_the_dry_run_gives_their_shape_and_sizes(cli, tmp_path, module):
    factory = module(TENSORS, "own_tensors")
    spec = factory_spec(tmp_path / "own.yaml", factory, n_train=40, n_test=12)
    dry = cli("run", spec, "--dry-run", "--results", tmp_path / "r")
    assert dry.code == 0, dry.err
    data = "  data: factory, images 1×8×8, 3 classes; 32 training, 8 validation and 12 test samples a trial"
    assert data in dry.out.splitlines(), dry.out

    trained = cli("train", spec, "--results", tmp_path / "r")
    assert trained.code == 0, trained.err
    assert list((tmp_path / "r" / "trials" / "sweep=own").glob("part-*.parquet"))
    arrays = load_arrays(DatasetSpec(name="factory", factory=factory, kwargs={"n_train": 40, "n_test": 12}))
    assert arrays.train_x.dtype == np.uint8 and arrays.train_x.shape == (40, 1, 8, 8)
    assert arrays.train_y.tolist()[:4] == [0, 1, 2, 0] and arrays.num_classes == 3

    before = parse_trial({"dataset": {"name": "factory", "factory": factory}}).key
    with open(tmp_path / "own_tensors.py", "a") as source:
        source.write("\n# edited\n")
    assert parse_trial({"dataset": {"name": "factory", "factory": factory}}).key != before


def test_torch_datasets_of_tensors_and_pil_images_are_read_as_pixels(module):
    factory = module(DATASETS, "own_datasets")
    arrays = load_arrays(DatasetSpec(name="factory", factory=factory))
    assert arrays.train_x.shape == (10, 3, 8, 8) and arrays.test_x.shape == (4, 3, 8, 8)
    assert arrays.train_x.dtype == np.uint8 and arrays.test_y.tolist() == [0, 1, 0, 1]
    import torch

    again = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    assert np.array_equal(arrays.test_x, again.numpy())  # the PIL images' pixels, channel first


BAD = {
    "returns a string": ("return 'data'", "returned str; return (train_x, train_y, test_x, test_y)"),
    "floats past 1": (
        "return torch.full((4, 2, 2), 2.0), torch.zeros(4, dtype=torch.long), torch.zeros(2, 2, 2), "
        "torch.zeros(2, dtype=torch.long)",
        "train_x holds float32 from 2 to 2; give uint8 pixels or floats in [0, 1]",
    ),
    "float labels": (
        "return torch.zeros(4, 2, 2), torch.zeros(4), torch.zeros(2, 2, 2), torch.zeros(2)",
        "train_y must be integer class indices 0, 1, ... (got float32 4)",
    ),
    "shapes differ": (
        "return torch.zeros(4, 2, 2), torch.zeros(4, dtype=torch.long), torch.zeros(2, 3, 3), "
        "torch.zeros(2, dtype=torch.long)",
        "train and test images differ in shape (1×2×2 and 1×3×3)",
    ),
    "raises": (
        "raise FileNotFoundError('no /data/here')",
        "own_bad:make raised FileNotFoundError: no /data/here",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_data_that_does_not_fit_is_one_line_naming_the_factory(cli, tmp_path, module, case):
    body, why = BAD[case]
    factory = module(f"import torch\n\ndef make():\n    {body}\n", "own_bad")
    result = cli(
        "run", factory_spec(tmp_path / "bad.yaml", factory), "--dry-run", "--results", tmp_path / "r"
    )
    assert result.code == 2 and "Traceback" not in result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith("sweep: error: dataset.factory: ") and why in line, line
