"""Typed readers for JSON values that raise SpecError naming the field path."""

from __future__ import annotations

from typing import Any

from runtime.errors import SpecError

_MISSING = object()


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(path, f"expected an object, got {_kind(value)}")
    return value


def arr(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(path, f"expected an array, got {_kind(value)}")
    return value


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"expected a string, got {_kind(value)}")
    if "\x00" in value:
        raise SpecError(path, "contains a NUL byte")
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"expected a boolean, got {_kind(value)}")
    return value


def integer(value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"expected an integer, got {_kind(value)}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise SpecError(path, f"{value} out of range [{lo}, {hi}]")
    return value


def uint32(value: Any, path: str) -> int:
    return integer(value, path, 0, 2**32 - 1)


def strings(value: Any, path: str) -> tuple[str, ...]:
    return tuple(string(v, f"{path}[{i}]") for i, v in enumerate(arr(value, path)))


def get(d: dict[str, Any], key: str, path: str, reader: Any, default: Any = _MISSING,
        **kw: Any) -> Any:
    """Read d[key] with reader; missing or null gives default (SpecError if no default)."""
    sub = f"{path}.{key}" if path else key
    value = d.get(key)
    if value is None:
        if default is _MISSING:
            raise SpecError(sub, "required field is missing")
        return default
    return reader(value, sub, **kw)


def items(d: dict[str, Any], key: str, path: str, reader: Any) -> tuple[Any, ...]:
    """Read an optional array of objects with reader(obj, path_of_item)."""
    sub = f"{path}.{key}" if path else key
    value = d.get(key)
    if value is None:
        return ()
    return tuple(reader(obj(v, f"{sub}[{i}]"), f"{sub}[{i}]")
                 for i, v in enumerate(arr(value, sub)))


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
