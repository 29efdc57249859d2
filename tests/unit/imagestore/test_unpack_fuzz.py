"""Property: whatever the tar says, nothing is written outside the layer directory."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestore.decompress import BombLimits
from imagestore.digest import Digest
from imagestore.errors import InvalidImage
from imagestore.unpack import unpack_layer

COMPONENTS = st.sampled_from(["a", "b", "..", ".", "", "outside", ".wh.a", ".wh..wh..opq"])
NAMES = st.lists(COMPONENTS, min_size=1, max_size=5).map("/".join)
KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE])


def _tar(entries: list[tuple[bytes, str, str]], outside: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, link in entries:
            info = tarfile.TarInfo(name or ".")
            info.type = kind
            # Symlink targets that would escape if followed: the real outside dir, or `..`s.
            info.linkname = link.replace("OUT", str(outside))
            data = b"pwned" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KINDS, NAMES, st.one_of(NAMES, st.just("OUT"), st.just("/OUT/x"))),
                min_size=1, max_size=8))
def test_nothing_escapes(entries: list[tuple[bytes, str, str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="crt-img-fuzz-") as tmp:
        layer, outside = Path(tmp) / "l1" / "l2" / "layer", Path(tmp) / "outside"
        layer.mkdir(parents=True)
        outside.mkdir()
        (outside / "keep").write_text("original")
        raw = _tar(entries, outside)
        try:
            unpack_layer([raw], "none", layer, Digest.of(raw),
                         BombLimits(1 << 30, 1000, 1 << 30))
        except InvalidImage:
            pass
        assert sorted(os.listdir(outside)) == ["keep"]
        assert (outside / "keep").read_text() == "original"
        assert sorted(os.listdir(tmp)) == ["l1", "outside"]
        assert sorted(os.listdir(Path(tmp) / "l1")) == ["l2"]
        assert sorted(os.listdir(Path(tmp) / "l1" / "l2")) == ["layer"]


def _valid_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in (("d", tarfile.DIRTYPE), ("d/f", tarfile.REGTYPE),
                           ("d/l", tarfile.SYMTYPE), ("d/h", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = {"d/l": "f", "d/h": "d/f"}.get(name, "")
            info.pax_headers = {"SCHILY.xattr.user.x": "y", "uid": "1000"}
            data = b"hello" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


VALID = _valid_tar()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1,
                max_size=6))
def test_corrupted_headers_give_named_errors(flips: list[tuple[int, int]]) -> None:
    raw = bytearray(VALID)
    for pos, value in flips:
        raw[pos] = value
    with tempfile.TemporaryDirectory(prefix="crt-img-fuzz-") as tmp:
        try:
            unpack_layer([bytes(raw)], "none", Path(tmp), Digest.of(bytes(raw)),
                         BombLimits(1 << 30, 1000, 1 << 30))
        except InvalidImage:
            pass
