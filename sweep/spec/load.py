"""Reading specs: YAML text and `--set KEY=VALUE` overrides in, a validated `SweepSpec` out.

Every error names the field, the value and what is allowed. Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sweep.errors import SpecError
from sweep.spec.choices import GLOBAL_SCOPE, MASKS_CHANGE
from sweep.spec.convert import build_dataclass, config_to_dict, did_you_mean
from sweep.spec.model_rules import check_erk, check_family_kind, check_model, implied_family
from sweep.spec.names import check_sweep_name
from sweep.spec.schema import (
    GRID_OWNED,
    SC_SDC_ONLY,
    TRIAL_SECTIONS,
    DatasetSpec,
    EgfSpec,
    GridSpec,
    ModelSpec,
    SearchSpec,
    SparsitySpec,
    SweepSpec,
    TrainSpec,
    TrialConfig,
)

MAX_SPEC_MB = 1
MAX_SPEC_BYTES = MAX_SPEC_MB * 2**20  # a spec is a few kB: anything larger is not one


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> SweepSpec:
    """Read a YAML spec, apply `KEY=VALUE` overrides, validate."""
    return parse_spec(apply_overrides(read_yaml(read_spec_text(path), str(path)), overrides))


def read_spec_text(path: str | Path) -> str:
    """A spec file's text: a regular file of at most `MAX_SPEC_BYTES` (never a device, a pipe or a folder)."""
    path = Path(path)
    try:
        info = path.stat()  # before opening: opening a named pipe would wait for a writer
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(f"spec file {path} is a folder; give a YAML file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"spec file {path} is not a regular file; give a YAML file")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(f"spec file {path} is larger than {MAX_SPEC_MB} MB; a spec is a short YAML file")
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    except OSError as exc:
        raise SpecError(f"spec file {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_SPEC_BYTES:  # it grew while we looked
        raise SpecError(f"spec file {path} is larger than {MAX_SPEC_MB} MB; a spec is a short YAML file")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SpecError(f"spec file {path} is not UTF-8 text; give a YAML file") from None


def read_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse a spec's YAML text; errors name the source and the line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}: YAML does not parse: {problem}") from None
    if data is None:
        raise SpecError(f"{source}: the spec is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `a.b.c=VALUE` overrides; VALUE is parsed as YAML. `grid.axes.<dotted key>` names one axis."""
    result = json.loads(json.dumps(raw, default=list))  # a deep copy that owns its lists
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, for example --set train.epochs=1")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise SpecError(f"--set {key}: value {text!r} does not parse as YAML") from None
        parts = key.split(".")
        if parts[:2] == ["grid", "axes"] and len(parts) > 2:
            parts = ["grid", "axes", ".".join(parts[2:])]
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(f"--set {key}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def parse_spec(raw: Mapping[str, Any]) -> SweepSpec:
    spec = build_dataclass(SweepSpec, implied_family(raw), "")
    check_sweep_name(spec.name, "name")
    _check_model(spec.model, "model")
    check_family_kind(spec.kind, spec.model, spec.grid)
    _check_sparsity(spec.sparsity, spec.model)
    if spec.model.mask == "dense" and spec.sparsity.method != "random":
        raise SpecError(
            f"sparsity.method: {spec.sparsity.method} finds no mask to choose in a dense net (mask: dense)"
        )
    if spec.kind == "snas" and spec.grid is not None:
        raise SpecError("grid: a grid belongs to kind sc_sdc or grid; kind snas takes a search section")
    if spec.kind in ("sc_sdc", "grid") and spec.search is not None:
        raise SpecError(f"search: a search belongs to kind snas; kind {spec.kind} takes a grid section")
    if spec.kind == "single" and (spec.grid is not None or spec.search is not None):
        raise SpecError("kind: single takes neither grid nor search; use kind snas, sc_sdc or grid")
    if spec.kind == "grid" and spec.grid is not None:
        for key in SC_SDC_ONLY:  # a saved spec lists them all, at their defaults
            if getattr(spec.grid, key) != getattr(GridSpec(), key):
                raise SpecError(f"grid.{key}: belongs to kind sc_sdc; kind grid takes axes and seeds")
    if spec.kind == "sc_sdc" and spec.grid is not None and spec.grid.dense_reference:
        raise SpecError("grid.dense_reference: belongs to kind grid; every SC-SDC cell has its dense partner")
    if spec.kind == "snas" and spec.search is None:
        spec = dataclasses.replace(spec, search=SearchSpec())
    if spec.search is not None and spec.search.baseline_seeds and not spec.search.baselines:
        raise SpecError(
            f"search.baseline_seeds: {list(spec.search.baseline_seeds)} needs search.baselines: true"
        )
    for name in spec.search.warm_start_from if spec.search is not None else ():
        check_sweep_name(name, "search.warm_start_from")
    if spec.kind in ("sc_sdc", "grid"):
        spec = dataclasses.replace(spec, grid=_check_grid(spec.grid or GridSpec(), spec.kind))
    return spec


def parse_trial(raw: Mapping[str, Any]) -> TrialConfig:
    """A trial's settings, validated. A dense net has no mask method: its sparsity settings are reset to the
    defaults, so that one dense net is one trial whatever method its sparse partners use."""
    config = build_dataclass(TrialConfig, implied_family(raw), "")
    _check_model(config.model, "model")
    _check_sparsity(config.sparsity, config.model)
    if config.model.mask == "dense" and config.sparsity != SparsitySpec():
        config = dataclasses.replace(config, sparsity=SparsitySpec())
    return config


def with_settings(config: TrialConfig, settings: Mapping[str, Any]) -> TrialConfig:
    """A copy of `config` with dotted-key settings applied and validated."""
    raw = config_to_dict(config)
    for key, value in settings.items():
        section, _, name = key.partition(".")
        if section not in TRIAL_SECTIONS or not name:
            raise SpecError(
                f"{key}: not a trial setting; use one of the sections {', '.join(TRIAL_SECTIONS)}"
            )
        raw[section][name] = value
    return parse_trial(raw)


def spec_to_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(config_to_dict(spec), sort_keys=False)


def _check_model(model: ModelSpec, path: str) -> None:
    check_model(model, path)
    check_erk(model, path)


def _check_sparsity(sparsity: SparsitySpec, model: ModelSpec) -> None:
    if sparsity.scope == "global" and sparsity.method not in GLOBAL_SCOPE:
        raise SpecError(
            f"sparsity.scope: global does not apply to method {sparsity.method}, which keeps every layer's "
            f"count; it applies to {', '.join(GLOBAL_SCOPE)}"
        )
    if sparsity.method in MASKS_CHANGE and model.backend == "sparse":
        raise SpecError(
            f"model.backend: sparse kernels keep a fixed mask, but method {sparsity.method} changes masks "
            "while it trains; use auto (it trains those layers masked) or masked"
        )
    if sparsity.method == "gmp" and sparsity.prune_start >= sparsity.update_end:
        raise SpecError(
            f"sparsity.prune_start: {sparsity.prune_start} must come before sparsity.update_end "
            f"({sparsity.update_end})"
        )


def _check_grid(grid: GridSpec, kind: str) -> GridSpec:
    """Axis names are trial settings; `a+b` links settings that vary together (values are lists)."""
    owned = GRID_OWNED if kind == "sc_sdc" else frozenset({"train.seed"})
    for name, values in grid.axes.items():
        keys = axis_keys(name)
        for key in keys:
            section, _, leaf = key.partition(".")
            if section not in TRIAL_SECTIONS or not leaf:
                raise SpecError(f"grid.axes.{name}: an axis is a trial setting such as train.optimizer")
            cls = {
                "dataset": DatasetSpec,
                "model": ModelSpec,
                "train": TrainSpec,
                "egf": EgfSpec,
                "sparsity": SparsitySpec,
            }[section]
            known = [f.name for f in dataclasses.fields(cls)]
            if leaf not in known:
                raise SpecError(f"grid.axes.{name}: unknown setting {key}{did_you_mean(leaf, known)}")
            if key in owned:
                itself = "sparse_width, ratios, depths, seeds" if kind == "sc_sdc" else "seeds"
                raise SpecError(f"grid.axes.{name}: {key} is set by the grid itself ({itself})")
        if not values:
            raise SpecError(f"grid.axes.{name}: an axis needs at least one value")
        if len(keys) > 1:
            for value in values:
                if not isinstance(value, list | tuple) or len(value) != len(keys):
                    raise SpecError(
                        f"grid.axes.{name}: each value must be a list of {len(keys)} "
                        f"({', '.join(keys)}), got {value!r}"
                    )
    return grid


def axis_keys(name: str) -> list[str]:
    """The settings an axis sets: `train.optimizer+train.lr` sets two at once."""
    return [key.strip() for key in name.split("+")]
