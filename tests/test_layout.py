"""The architecture's boundaries as contracts: which layer may import what (every import, also the ones
inside functions), and which commands must not load Ray or torch at all."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.engine.moved import MOVED

from .conftest import ROOT, write_spec

PACKAGE = ROOT / "sweep"
LAYERS = ("spec", "core", "plans", "engine", "store", "report", "trackers", "bench", "cli")
# layer -> (third-party packages it must not import, project layers it must not import)
CONTRACTS = {
    "spec": (
        {"ray", "optuna", "duckdb", "pandas", "pyarrow", "torch", "matplotlib"},
        {"core", "plans", "engine", "store", "report", "trackers", "bench", "cli"},
    ),
    "core": (
        {"ray", "optuna", "duckdb", "pandas", "pyarrow", "matplotlib", "scipy"},
        {"plans", "engine", "store", "report", "trackers", "bench", "cli"},
    ),
    "plans": (
        {"ray", "duckdb", "pyarrow", "matplotlib"},
        {"engine", "store", "report", "trackers", "bench", "cli"},
    ),
    "store": (
        {"ray", "optuna", "torch", "matplotlib"},
        {"core", "plans", "engine", "report", "trackers", "bench", "cli"},
    ),
    "report": ({"ray", "optuna", "torch"}, {"core", "plans", "engine", "trackers", "bench", "cli"}),
    "trackers": ({"ray", "optuna"}, {"core", "plans", "engine", "report", "bench", "cli"}),
    "engine": (set(), {"report", "trackers", "bench", "cli"}),
    "bench": ({"ray"}, {"cli", "report"}),
    "cli": ({"ray"}, set()),
    "errors": (set(), set(LAYERS)),
    "echo": (set(), set(LAYERS)),
    "ray_env": ({"ray"}, set(LAYERS)),  # set before Ray is imported
}


def imports_of(source: str) -> set[str]:
    """Every module a source file imports, at any depth (functions and TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(layer: str, source: str) -> list[str]:
    """What a module of `layer` imports against its contract."""
    banned_packages, banned_layers = CONTRACTS[layer]
    found = []
    for name in sorted(imports_of(source)):
        parts = name.split(".")
        if parts[0] in banned_packages or (
            parts[0] == "sweep" and len(parts) > 1 and parts[1] in banned_layers
        ):
            found.append(name)
    return found


def layer_of(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE)
    top = relative.parts[0].removesuffix(".py")
    return top if top in CONTRACTS else None


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_keeps_to_its_layer(path):
    layer = layer_of(path)
    if layer is None:
        assert path.name in ("__init__.py", "__main__.py") and path.parent == PACKAGE, path
        return
    assert violations(layer, path.read_text()) == [], f"{path.relative_to(ROOT)} crosses its layer"


def test_every_project_import_resolves():
    """Imports inside functions run late: a moved module must not leave one behind."""
    missing = []
    for path in modules():
        for name in imports_of(path.read_text()):
            if name.startswith("sweep.") and not _resolves(name):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []


def _resolves(name: str) -> bool:
    """A module, or a name a module defines (`from sweep.x import y` lists `sweep.x` and `sweep.x.y`)."""
    module, _, attribute = name.rpartition(".")
    try:
        if importlib.util.find_spec(name) is not None:
            return True
    except ModuleNotFoundError:
        pass
    try:
        return hasattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError:
        return False


def test_every_module_belongs_to_a_layer():
    stray = [p for p in modules() if layer_of(p) is None and p.parent != PACKAGE]
    assert stray == []
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    # beside the entry points, only the leaves every layer may use: errors, output lines, Ray's environment
    assert top_level == ["__init__.py", "__main__.py", "echo.py", "errors.py", "ray_env.py"]


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("core", "import ray\n"),
        ("core", "def f():\n    from sweep.store import ResultsStore\n"),
        ("plans", "from ray.tune.search.optuna import OptunaSearch\n"),
        ("plans", "from sweep.engine.worker import PLANNED\n"),
        ("report", "from sweep.core.train import train_trial\n"),
        ("store", "import sweep.plans.snas\n"),
        ("spec", "from sweep.core import masks\n"),
        ("cli", "import ray\n"),
    ],
)
def test_a_crossing_is_caught(layer, source):
    """The checker itself: a deliberate violation of each kind is reported."""
    assert violations(layer, source)


def test_the_checker_allows_what_a_layer_may_import():
    assert violations("plans", "import optuna\nfrom sweep.core.masks import active_weights\n") == []
    assert violations("report", "from sweep.store.summary import pareto_keys\nimport matplotlib\n") == []


def test_no_module_is_past_260_lines():
    """A module that grows past 260 lines is split by job."""
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > 260}
    assert long == {}


CHECK = """
import sys
from sweep.cli import main
code = main(sys.argv[1:])
loaded = sorted(name for name in ("ray", "torch", "optuna") if name in sys.modules)
print("loaded:", ",".join(loaded))
sys.exit(code)
"""


def _loaded(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("loaded:"))
    return set(filter(None, line.removeprefix("loaded:").strip().split(",")))


def test_train_never_loads_ray_and_query_loads_neither_ray_nor_torch(tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        "name: t\ndataset: {name: synthetic}\nmodel: {widths: [8]}\ntrain: {epochs: 1}\negf: {samples: 32}\n",
    )
    trained = _loaded("train", spec, "--results", tmp_path / "r")
    assert "ray" not in trained and "optuna" not in trained and "torch" in trained
    queried = _loaded("query", "SELECT count(*) AS n FROM trials", "--results", tmp_path / "r")
    assert queried.isdisjoint({"ray", "torch", "optuna"})


def code_map() -> dict[str, set[str]]:
    """The README's code map: each row's path (a package folder, or files) -> the modules it names."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Code map") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    rows = {}
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip().startswith("`sweep/"):
            rows[cells[1].strip()] = set(re.findall(r"`([a-z_]+/?)`", cells[2]))
    return rows


def test_the_code_map_names_every_module_and_no_other():
    rows = code_map()
    named_files = {path for key in rows for path in re.findall(r"`(sweep/[a-z_]+\.py)`", key)}
    for key, names in rows.items():
        if key.endswith(".py`"):
            continue
        folder = ROOT / key.strip("`")
        on_disk = {f.stem for f in folder.glob("*.py") if f.stem != "__init__"}
        on_disk |= {d.name + "/" for d in folder.iterdir() if (d / "__init__.py").is_file()}
        assert sorted(on_disk - names) == [], f"{key}: modules the code map does not name"
        assert sorted(names - on_disk) == [], f"{key}: names in the code map that are no module"
    packages = {f"`{d.relative_to(ROOT)}/`" for d in PACKAGE.rglob("*") if (d / "__init__.py").is_file()}
    assert sorted(packages - set(rows)) == [], "packages without a row in the code map"
    top = {str(f.relative_to(ROOT)) for f in PACKAGE.glob("*.py")}
    assert top == named_files, "top-level modules of sweep/ and the code map's rows for them differ"


def _repeated_blocks(*folders: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / ".ci" / "repeated_blocks.py"), *map(str, folders)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_no_block_of_six_code_lines_repeats_in_the_package():
    result = _repeated_blocks(PACKAGE)
    assert result.returncode == 0, result.stdout


def test_the_repeated_block_check_names_both_places_of_a_copy(tmp_path):
    body = "".join(f"    total = total + {n} * value\n" for n in range(6))
    (tmp_path / "a.py").write_text(f'"""A."""\n\n\ndef one(value):\n    total = 0\n{body}    return total\n')
    (tmp_path / "b.py").write_text(f"def two(value):\n    total = 1\n{body}    return -total\n")
    (tmp_path / "c.py").write_text("import os\nimport sys\nimport re\nimport ast\nimport json\nimport math\n")
    (tmp_path / "d.py").write_text("import os\nimport sys\nimport re\nimport ast\nimport json\nimport math\n")
    result = _repeated_blocks(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"repeated block of code: {tmp_path}/a.py:6, {tmp_path}/b.py:3"]


@pytest.mark.parametrize(
    "old", ["sweep.engine.checkpoints", "sweep.engine.replay", "sweep.engine.study_searcher"]
)
def test_a_moved_module_s_old_path_gives_the_module_at_its_new_one(old):
    """Tune pickles class paths into a sweep's saved state: what a sweep interrupted before a move names."""
    import pickle

    new = importlib.import_module(MOVED[old])
    assert importlib.import_module(old) is new
    classes = [v for v in vars(new).values() if isinstance(v, type) and v.__module__ == new.__name__]
    assert classes
    for cls in classes:
        saved = pickle.dumps(cls, protocol=0).replace(new.__name__.encode(), old.encode())
        assert pickle.loads(saved) is cls


PRELOAD_CHECK = """
import sys
from sweep.engine.experiment import preload_tune
preload_tune()
before = set(sys.modules)
from ray.air._internal.usage import _count_callbacks
from ray.tune import Callback
_count_callbacks([Callback()])  # what `tune.run` does before its first trial, given callbacks
print("new:", ",".join(sorted(set(sys.modules) - before - {"ray.air._internal.usage"})))
"""


def test_the_driver_preloads_what_tune_imports_before_its_first_trial():
    """The driver imports, while Ray starts, every module Tune would import at the start of a run (a new Ray
    that Tune imports more of would put seconds back before the first trial)."""
    command = [sys.executable, "-c", PRELOAD_CHECK]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("new:"))
    assert line.removeprefix("new:").strip() == ""
