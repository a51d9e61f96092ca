"""Typed configs: one dataclass per entry point, loaded from YAML recipes with `key=value` overrides.

Each field is documented once, in its `metadata["help"]`. Unknown keys and values of the wrong
type are one-line `ReasonlabError`s naming the field (and the file).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reasonlab.errors import ReasonlabError

T = TypeVar("T")


def option(default, help_text: str):
    """A config field with its help text (the CLI's and the docs' one source); a list or dict
    default is copied for each instance."""
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"help": help_text})
    return dataclasses.field(default=default, metadata={"help": help_text})


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ReasonlabError as e:
                errors.append(str(e))
        raise ReasonlabError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ReasonlabError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if isinstance(value, (int, float)):  # `waits=1` on the command line: a one-item list
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ReasonlabError(f"{where}: expected a list, got {value!r}")
        (arg, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ReasonlabError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ReasonlabError(f"{where}: expected a number, got {value!r}")
        try:
            num = tp(value) if not isinstance(value, str) else tp(float(value)) if tp is int and "e" in value.lower() else tp(value)
        except (TypeError, ValueError):
            raise ReasonlabError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ReasonlabError(f"{where}: expected an integer, got {value!r}")
        return num
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ReasonlabError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build `cls` from a mapping; unknown keys and bad values raise `ReasonlabError`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ReasonlabError(f"{where}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check:
        check()
    return obj


def parse_overrides(items: list[str]) -> dict:
    """`["a=1", "mix.correct=0.5"]` → `{"a": "1", "mix": {"correct": "0.5"}}` (values typed later)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ReasonlabError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value) if value.strip() else ""
    return out


def merge_dicts(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = merge_dicts(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def read_mapping(path: str | Path, missing: str = "config file not found") -> dict:
    """A YAML file's top-level mapping; one-line errors for a missing file, bad YAML or a non-mapping."""
    path = Path(path)
    if not path.exists():
        raise ReasonlabError(f"{missing}: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ReasonlabError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ReasonlabError(f"{path}: expected a mapping at the top level")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict | list[str] | None = None) -> T:
    """Recipe file (optional) < overrides; then typed and validated."""
    data: dict = {}
    where = "config"
    if path is not None:
        data, where = read_mapping(path), str(path)
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return from_dict(cls, merge_dicts(data, overrides or {}), where)


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def describe(cls, prefix: str = "") -> list[tuple[str, str, str]]:
    """(name, default, help) for every field, nested dataclasses flattened with dots."""
    rows = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            rows += describe(hint, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        rows.append((prefix + f.name, repr(default), f.metadata.get("help", "")))
    return rows
