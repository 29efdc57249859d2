"""runtime.records: the cheap dataclass replacement keeps the dataclass contract we rely on."""

import pytest

from runtime.records import FrozenInstanceError, asdict, dataclass, field, fields, replace

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Inner:
    a: int
    b: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=lambda: Inner(1))
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Mutable:
    x: int = 0
    items: list[int] = field(default_factory=list)


def test_init_defaults_and_factories_are_fresh() -> None:
    one, two = Outer("a"), Outer("b")
    assert one.inner == Inner(1, ())
    assert one.tags == {} and one.tags is not two.tags
    assert Mutable().items is not Mutable().items


def test_equality_hash_and_repr() -> None:
    assert Outer("a") == Outer("a")
    assert Outer("a") != Outer("b")
    assert Inner(1) != (1, ())
    assert hash(Inner(1, ("x",))) == hash(Inner(1, ("x",)))
    assert repr(Inner(2, ("y",))) == "Inner(a=2, b=('y',))"
    with pytest.raises(TypeError):
        hash(Mutable())


def test_frozen_refuses_assignment() -> None:
    obj = Inner(1)
    with pytest.raises(FrozenInstanceError):
        obj.a = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del obj.a  # type: ignore[misc]
    m = Mutable()
    m.x = 3
    assert m.x == 3


def test_asdict_replace_fields() -> None:
    obj = Outer("a", Inner(2, ("x",)), {"k": "v"})
    assert asdict(obj) == {"name": "a", "inner": {"a": 2, "b": ("x",)}, "tags": {"k": "v"}}
    assert replace(obj, name="b") == Outer("b", Inner(2, ("x",)), {"k": "v"})
    assert [f.name for f in fields(Outer)] == ["name", "inner", "tags"]
    with pytest.raises(TypeError):
        replace(obj, nope=1)
    with pytest.raises(TypeError):
        Inner()  # type: ignore[call-arg]


def test_match_args() -> None:
    match Inner(5, ("z",)):
        case Inner(a, b):
            assert (a, b) == (5, ("z",))


def test_non_default_after_default_is_refused() -> None:
    with pytest.raises(TypeError):
        @dataclass
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_compile_all_replaces_the_lazy_init() -> None:
    from runtime.records import compile_all

    @dataclass(frozen=True)
    class Late:
        v: int = 1

    assert getattr(Late.__init__, "__lazy_record_init__", False)
    compile_all()
    assert not getattr(Late.__init__, "__lazy_record_init__", False)
    assert Late(2).v == 2 and Late().v == 1
