"""Reference grammar and normalisation, as kubelet and crictl expect them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagestore.digest import Digest
from imagestore.errors import InvalidReference
from imagestore.reference import candidates, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost/app", "localhost/app:latest"),
    ("127.0.0.1:5000/ns/app:v1", "127.0.0.1:5000/ns/app:v1"),
    ("host:5000/app", "host:5000/app:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
    (f"quay.io/a/b:t@{D}", f"quay.io/a/b:t@{D}"),
    ("a.b/c__d/e-f.g_h:Tag_1.0-x", "a.b/c__d/e-f.g_h:Tag_1.0-x"),
])
def test_parse_normalises(text: str, expected: str) -> None:
    assert str(parse(text)) == expected


def test_parts() -> None:
    ref = parse(f"127.0.0.1:5000/ns/app:v1@{D}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "127.0.0.1:5000", "ns/app", "v1", Digest.parse(D))
    assert ref.lookup == D
    assert parse("busybox").lookup == "latest"


@pytest.mark.parametrize("text", [
    "", "Busybox", "busybox:", "busybox:-bad", ":tag", "a//b", "-a", "a-", "busybox@sha256:abc",
    "busybox@md5:" + "a" * 32, "a" * 64, "host:port/app", "app:" + "t" * 129,
    "a/" * 130 + "b", "bad host/app", "UPPER.io/App",
])
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse(text)


def test_short_names_search_in_order() -> None:
    assert [str(r) for r in candidates("app", ["quay.io", "docker.io"])] == [
        "quay.io/app:latest", "docker.io/library/app:latest"]
    assert [str(r) for r in candidates("reg.io/app", ["quay.io"])] == ["reg.io/app:latest"]
    with pytest.raises(InvalidReference):
        candidates("app", [])


_COMPONENT = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-+)[a-z0-9]{1,5}){0,2}", fullmatch=True)
_DOMAIN = st.sampled_from(["docker.io", "quay.io", "localhost:5000", "127.0.0.1:5000", "a.b.c"])
_TAGS = st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True).filter(str.isascii)


@given(_DOMAIN, st.lists(_COMPONENT, min_size=1, max_size=3), st.one_of(st.none(), _TAGS),
       st.one_of(st.none(), st.just(D)))
def test_round_trip(domain: str, path: list[str], tag: str | None, digest: str | None) -> None:
    text = f"{domain}/{'/'.join(path)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest
                                                                       else "")
    ref = parse(text)
    assert parse(str(ref)) == ref
    assert (ref.tag, str(ref.digest) if ref.digest else None) == (
        tag or (None if digest else "latest"), digest)


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_is_invalid(text: str) -> None:
    try:
        parse(text)
    except InvalidReference:
        pass
