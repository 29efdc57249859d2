"""Record classes declared like dataclasses, but cheap to define.

Why not ``dataclasses``: importing it pulls in ``inspect`` and each ``@dataclass`` compiles five
or six generated methods at class creation. The runtime declares some sixty records and
``crid-runtime`` imports most of them on every call, so the stdlib decorator cost the CLI a
measurable share of its start-up (the CLI benchmark in make bench tells how much). Here only
``__init__`` is generated (one ``exec`` per class, on its first instantiation); ``__repr__``,
``__eq__``, ``__hash__`` and the frozen ``__setattr__`` are shared functions reading the class's
field names.

Supported: ``@dataclass`` and ``@dataclass(frozen=True)``, fields with plain defaults or
``field(default=...)`` / ``field(default_factory=...)``, and ``asdict``, ``replace``,
``fields`` over such records. No inheritance between records, no ``__post_init__``, no
``ClassVar``: the runtime uses none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """One declared field: its name and default (a value or a factory)."""

    __slots__ = ("name", "default", "default_factory")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING) -> Any:
    """A field with a default value or a default factory (as ``dataclasses.field``)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory)


@dataclass_transform(field_specifiers=(field,))
def dataclass(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record: ``__init__`` from its annotated fields, value equality, repr;
    with ``frozen``, immutability and a hash."""
    def wrap(c: type[T]) -> type[T]:
        return _make(c, frozen)
    return wrap if cls is None else wrap(cls)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in declaration order."""
    return obj.__record_fields__  # type: ignore[no-any-return]


def is_record(obj: Any) -> bool:
    return hasattr(obj, "__record_fields__")


def asdict(obj: Any) -> dict[str, Any]:
    """The record as a dict, nested records, lists, tuples and dicts converted recursively."""
    return {f.name: _convert(getattr(obj, f.name)) for f in obj.__record_fields__}


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of the record with ``changes`` applied (validated by ``__init__``)."""
    values = {f.name: getattr(obj, f.name) for f in obj.__record_fields__}  # type: ignore[attr-defined]
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    return type(obj)(**{**values, **changes})


def _convert(value: Any) -> Any:
    if hasattr(type(value), "__record_fields__"):
        return asdict(value)
    if isinstance(value, list | tuple):
        return type(value)(_convert(v) for v in value)
    if isinstance(value, dict):
        return {_convert(k): _convert(v) for k, v in value.items()}
    return value


def _make(cls: type[T], frozen: bool) -> type[T]:
    own = cls.__dict__
    declared: list[Field] = []
    for name in own.get("__annotations__", {}):
        value = own.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(value)
        f.name = name
        declared.append(f)
        if isinstance(value, Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    _check_order(cls, declared)
    attrs: dict[str, Any] = {
        "__record_fields__": tuple(declared),
        "__match_args__": tuple(f.name for f in declared),
        "__init__": _lazy_init(cls, declared, frozen),
        "__repr__": _repr, "__eq__": _eq,
    }
    if frozen:
        attrs.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr, __hash__=_hash)
    elif "__hash__" not in own:
        attrs["__hash__"] = None  # mutable and comparable: unhashable, as dataclasses
    for name, value in attrs.items():
        if name in ("__repr__", "__eq__") and name in own:
            continue
        setattr(cls, name, value)
    return cls


def _check_order(cls: type, declared: list[Field]) -> None:
    seen_default = False
    for f in declared:
        has = f.default is not _MISSING or f.default_factory is not _MISSING
        if seen_default and not has:
            raise TypeError(f"{cls.__name__}: non-default field {f.name!r} follows a default")
        seen_default = seen_default or has


_pending: list[tuple[type, list[Field], bool]] = []


def compile_all() -> None:
    """Compile the ``__init__`` of every record defined so far now: a process that forks
    workers (the zygote) calls it once, so that its children do not each compile them."""
    while _pending:
        cls, declared, frozen = _pending.pop()
        if getattr(cls.__dict__["__init__"], "__lazy_record_init__", False):
            type.__setattr__(cls, "__init__", _init_for(cls, declared, frozen))


def _lazy_init(cls: type, declared: list[Field], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one on first use and puts it in its place: most
    records are never made in a given process (the CLI uses a few of the sixty), and the
    compile is most of a record's definition cost."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        real = _init_for(cls, declared, frozen)
        type.__setattr__(cls, "__init__", real)
        real(self, *args, **kwargs)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__lazy_record_init__ = True  # type: ignore[attr-defined]
    _pending.append((cls, declared, frozen))
    return __init__


def _init_for(cls: type, declared: list[Field], frozen: bool) -> Callable[..., None]:
    """Generate ``__init__``: one compile per class, the rest is shared."""
    env: dict[str, Any] = {"_MISSING": _MISSING, "_setattr": object.__setattr__}
    params, body = [], []
    for i, f in enumerate(declared):
        if f.default_factory is not _MISSING:
            env[f"_f{i}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            body.append(f"  if {f.name} is _MISSING: {f.name} = _f{i}()")
        elif f.default is not _MISSING:
            env[f"_d{i}"] = f.default
            params.append(f"{f.name}=_d{i}")
        else:
            params.append(f.name)
        body.append(f"  _setattr(self, {f.name!r}, {f.name})" if frozen
                    else f"  self.{f.name} = {f.name}")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["  pass"])
    exec(src, env)  # noqa: S102 - the source is built from identifiers only
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init  # type: ignore[no-any-return]


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in self.__record_fields__)


def _repr(self: Any) -> str:
    inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__)
    return f"{type(self).__qualname__}({inner})"


def _eq(self: Any, other: Any) -> bool:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
