"""Generic typed conversion: plain YAML data into frozen dataclasses, checked against their type hints.

Every error names the field, the value and what is allowed. Rules travel in each field's metadata
(`choices`, `gt`, `ge`, `lt`, `le`, `nonempty`).
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from sweep.errors import SpecError

_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def config_to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass spec as plain YAML/JSON data (tuples become lists)."""
    return plain(dataclasses.asdict(obj))


def build_dataclass(cls: type, raw: Any, path: str) -> Any:
    where = path or "spec"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping of settings, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            name = f"{path}.{key}" if path else str(key)
            raise SpecError(
                f"{name}: unknown key{did_you_mean(str(key), list(fields))}; allowed: {', '.join(fields)}"
            )
    values = {}
    for name, f in fields.items():
        full = f"{path}.{name}" if path else name
        if name in raw:
            values[name] = _convert(raw[name], hints[name], full, f.metadata.get("rules", {}))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{full}: required, but missing")
    return cls(**values)


def _convert(value: Any, hint: Any, path: str, rules: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise SpecError(f"{path}: a value is required, got null")
        errors = []
        for option in (o for o in options if o is not type(None)):
            if _shape_matches(value, option):
                return _convert(value, option, path, rules)
            errors.append(_describe(option))
        raise SpecError(f"{path}: expected {' or '.join(errors)}, got {_show(value)}")
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, {} if value is None else value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(f"{path}: expected {_describe(hint)}, got {_show(value)}")
        if rules.get("nonempty") and not value:
            raise SpecError(f"{path}: expected a non-empty list")
        item = typing.get_args(hint)[0]
        return tuple(_convert(v, item, f"{path}[{i}]", rules) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SpecError(f"{path}: expected a mapping, got {_show(value)}")
        item_hint = typing.get_args(hint)[1]
        if item_hint is Any:  # settings passed on as they are (a builder's kwargs)
            return {str(key): plain(item) for key, item in value.items()}
        if typing.get_origin(item_hint) is not tuple:  # one value per name, each checked by the rules
            if rules.get("nonempty") and not value:
                raise SpecError(f"{path}: expected a non-empty mapping")
            named = {str(key): (item, f"{path}.{key}") for key, item in value.items()}
            return {
                key: _check_scalar(_coerce_scalar(item, item_hint, where), where, rules)
                for key, (item, where) in named.items()
            }
        out = {}
        for key, items in value.items():
            if not isinstance(items, list | tuple):
                raise SpecError(f"{path}.{key}: expected a list of values, got {_show(items)}")
            out[str(key)] = tuple(items)
        return out
    return _check_scalar(_coerce_scalar(value, hint, path), path, rules)


def _shape_matches(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list | tuple)
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return isinstance(value, Mapping)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _coerce_scalar(value: Any, hint: Any, path: str) -> Any:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    if hint is str and isinstance(value, str):
        return value
    if hint is Any:
        return value
    raise SpecError(f"{path}: expected {_describe(hint)}, got {_show(value)}")


def _check_scalar(value: Any, path: str, rules: Mapping[str, Any]) -> Any:
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        raise SpecError(f"{path}: {value!r} is not allowed; choose one of {', '.join(choices)}")
    if rules.get("nonempty") and isinstance(value, str) and not value.strip():
        raise SpecError(f"{path}: must not be empty")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and any(name in rules and not test(value, rules[name]) for name, test, _ in _BOUNDS):
        allowed = " and ".join(f"{sign} {rules[name]}" for name, _, sign in _BOUNDS if name in rules)
        raise SpecError(f"{path}: {value!r} is out of range; allowed: {allowed}")
    return value


_BOUNDS = (
    ("gt", operator.gt, ">"),
    ("ge", operator.ge, ">="),
    ("lt", operator.lt, "<"),
    ("le", operator.le, "<="),
)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        plural = {int: "integers", float: "numbers", bool: "true or false values", str: "strings"}
        item = typing.get_args(hint)[0]
        return f"a list of {plural.get(item, _describe(item))}"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
