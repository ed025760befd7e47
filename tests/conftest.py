"""Shared fixtures. Every test uses real parts: real torch, real Parquet, real Fashion-MNIST where needed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# The tests see the defaults, not this machine's calibration or caches (Ray workers inherit this).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sparse-sweep-tests-")

from sweep.cli import main
from sweep.core.data import DEBIAN_FASHION_MNIST, load_arrays
from sweep.spec import DatasetSpec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "search_spaces"
needs_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)


def _one_share_of_the_cores() -> None:
    """Under pytest-xdist, each worker's in-process torch gets its share of the cores, not all of them:
    two workers each running two OpenMP threads on two cores make every thread wait on the others."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // workers))


_one_share_of_the_cores()


@pytest.fixture(scope="session")
def fashion():
    """The whole Fashion-MNIST data set, read once for the session."""
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return load_arrays(DatasetSpec(name="fashion_mnist"))


def _start_shared_ray() -> None:
    import ray

    if not ray.is_initialized():
        from sweep.engine.session import start_embedded_ray

        start_embedded_ray()  # the Ray `sweep run` starts


@pytest.fixture(scope="module")
def shared_ray():
    """One embedded Ray for the tests that allow it (`pytest.mark.usefixtures("shared_ray")`, or a module
    fixture that asks for it): started by the first of them and kept up for the next, so that its workers,
    torch imported, serve every sweep. It is the Ray `sweep run` would start; in-process sweeps find it up
    and use it as it is."""
    _start_shared_ray()
    yield


@pytest.fixture
def ray_temp():
    """A temp folder for a Ray node the test starts, with a path short enough for Ray's sockets."""
    from .clusters import short_temp

    with short_temp() as folder:
        yield folder


@pytest.fixture(autouse=True)
def _ray_as_the_test_needs(request):
    """A test that does not share meets no Ray in this process: its sweeps start their own, with the
    environment the test set (the shared one is stopped, and the next test that shares starts it again)."""
    import ray

    if "shared_ray" in request.fixturenames:
        _start_shared_ray()
    elif ray.is_initialized():
        ray.shutdown()
    yield


def pytest_collection_modifyitems(config, items):
    """The tests that share one Ray run back to back, so that it starts once rather than again after each
    module that wants none (every start costs Ray's own start and stop, new workers and their imports): first
    the modules where every test shares, then those where some do (theirs first), then the rest. A module's
    tests stay together, so its fixtures are made once; every test still meets Ray as it asks."""
    shares = {item: "shared_ray" in item.fixturenames for item in items}
    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(item.nodeid.split("::")[0], []).append(item)

    def rank(tests: list) -> int:
        sharing = sum(shares[test] for test in tests)
        return 0 if sharing == len(tests) else 1 if sharing else 2

    modules = sorted(by_module.values(), key=rank)  # stable: the collection's order within each rank
    items[:] = [test for tests in modules for test in sorted(tests, key=lambda test: not shares[test])]


def pytest_sessionfinish(session, exitstatus):
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


_EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process with the session's status once every report is written, without finalizing the
    interpreter: after a long session with Ray, torch, gRPC and the trackers' threads loaded together, their
    native teardown can crash (a segfault after every test passed), which would turn a green run red."""
    import sys

    status = config.stash.get(_EXIT_STATUS, None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


TWO_TRIALS_EPOCHS, TWO_TRIALS_METHODS = 2, ("random", "snip")


@pytest.fixture(scope="session")
def two_trials(tmp_path_factory) -> Path:
    """The results folder of a sweep `tb` of two trials, trained by `sweep train` (no Ray): one per sparsity
    method, two epochs each. The tracker exports read it."""
    folder = tmp_path_factory.mktemp("two-trials")
    spec = write_spec(
        folder / "tb.yaml",
        "name: tb\ndataset: {name: synthetic, subset: 300}\n"
        f"train: {{epochs: {TWO_TRIALS_EPOCHS}, batch_size: 64}}\negf: {{samples: 64}}\n",
    )
    for seed, method in enumerate(TWO_TRIALS_METHODS):
        overrides = ("--set", f"sparsity.method={method}", "--set", f"train.seed={seed}")
        assert main(["train", str(spec), *overrides, "--results", str(folder / "r")]) == 0
    return folder / "r"


@pytest.fixture(scope="session")
def synthetic():
    return load_arrays(DatasetSpec(name="synthetic"))


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run the `sweep` command in-process through its real entry point."""

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tiny_grid(name: str, grid: str) -> str:
    """A one-epoch SC-SDC spec on 300 synthetic samples (seconds on the embedded Ray); `grid` is its grid."""
    return (
        f"name: {name}\nkind: sc_sdc\ndataset: {{name: synthetic, subset: 300}}\n"
        f"train: {{epochs: 1, batch_size: 64}}\negf: {{samples: 64}}\ngrid: {grid}\n"
    )


def factory_module(tmp_path: Path, monkeypatch, name: str, source: str) -> Path:
    """A folder holding the model factory module `name` (its `source`), made the test's working folder, where
    `sweep` finds a user's factory."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def refused_dry_run(cli, spec: Path, results: Path) -> str:
    """`sweep run SPEC --dry-run` refused in one line (exit 2, no traceback, nothing written): that line."""
    result = cli("run", str(spec), "--dry-run", "--results", str(results))
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert "Traceback" not in result.err and not Path(results).exists()
    return line
