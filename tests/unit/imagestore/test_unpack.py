"""Layer extraction: hostile tars are refused and write nothing outside the layer directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard

from imagestore.decompress import BombLimits
from imagestore.digest import Digest
from imagestore.errors import InvalidImage, VerificationFailed
from imagestore.unpack import unpack_layer

LIMITS = BombLimits(max_bytes=1 << 40, max_ratio=200, ratio_floor=512 << 20)
ROOT = os.geteuid() == 0


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
           link: str = "", mode: int = 0o644, **pax: str) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1_700_000_000
    if kind == tarfile.REGTYPE:
        data = data or b""
        info.size = len(data)
    info.pax_headers = dict(pax)
    return info, data


def _diff_id(raw: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(raw).hexdigest())


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(layer dir, a sibling 'outside' dir with one file) — escapes would land in outside."""
    layer, outside = tmp_path / "a" / "b" / "layer", tmp_path / "outside"
    layer.mkdir(parents=True)
    outside.mkdir()
    (outside / "passwd").write_text("original\n")
    return layer, outside


def _unpack(raw: bytes, dest: Path, compression: str = "none", data: bytes | None = None,
            limits: BombLimits = LIMITS) -> object:
    blob = data if data is not None else raw
    chunks = [blob[i:i + 4096] for i in range(0, len(blob), 4096)]
    return unpack_layer(chunks, compression, dest, _diff_id(raw), limits)


def _outside_unchanged(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]
    assert (outside / "passwd").read_text() == "original\n"


@pytest.mark.parametrize("members, message", [
    ([_entry("../../../outside/passwd", data=b"pwned")], "contains '..'"),
    ([_entry("ok/../../../../outside/x", data=b"pwned")], "contains '..'"),
    ([_entry("/etc/passwd", data=b"pwned")], "absolute path"),
    ([_entry("evil", tarfile.SYMTYPE, link="/etc"), _entry("evil/passwd", data=b"pwned")],
     "goes through 'evil', which is a symlink"),
    ([_entry("evil", tarfile.SYMTYPE, link="../../../outside"),
      _entry("evil/passwd", data=b"pwned")], "which is a symlink"),
    ([_entry("d", tarfile.DIRTYPE, mode=0o755), _entry("d/f", data=b"x"),
      _entry("d", tarfile.SYMTYPE, link="../../../outside"), _entry("d/passwd", data=b"pwned")],
     "which is a symlink"),
    ([_entry("f", data=b"x"), _entry("f/g", data=b"x")], "which is not a dir"),
    ([_entry("shadow", tarfile.LNKTYPE, link="/etc/shadow")], "absolute path"),
    ([_entry("shadow", tarfile.LNKTYPE, link="../../../outside/passwd")], "contains '..'"),
    ([_entry("etc", tarfile.SYMTYPE, link="/etc"),
      _entry("shadow", tarfile.LNKTYPE, link="etc/shadow")], "which is a symlink"),
    ([_entry("link", tarfile.LNKTYPE, link="missing")], "not in this layer"),
    ([_entry("dir/.wh..", data=b"")], "names nothing"),
    ([_entry("a/" * 2100 + "f", data=b"")], "longer than 4096 bytes"),
    ([_entry("f", data=b"x", uid="99999999999")], "bad field"),
])
def test_hostile_entries_refused(sandbox: tuple[Path, Path], members: list, message: str) -> None:
    layer, outside = sandbox
    with pytest.raises(InvalidImage, match=message):
        _unpack(_tar(*members), layer)
    _outside_unchanged(outside)
    assert not (Path("/etc/shadow").is_symlink() or Path("/etc/passwd").read_bytes() == b"pwned")


def test_gzip_bomb_refused(sandbox: tuple[Path, Path]) -> None:
    layer, outside = sandbox
    raw = _tar(_entry("zeros", data=bytes(64 << 20)))
    bomb = zlib.compress(raw, 9, wbits=31)
    limits = BombLimits(max_bytes=1 << 40, max_ratio=100, ratio_floor=1 << 20)
    with pytest.raises(InvalidImage, match="decompression bomb"):
        _unpack(raw, layer, "gzip", bomb, limits)
    _outside_unchanged(outside)


def test_size_cap(sandbox: tuple[Path, Path]) -> None:
    raw = _tar(_entry("f", data=os.urandom(1 << 20)))
    with pytest.raises(InvalidImage, match="more than 65536 bytes"):
        _unpack(raw, sandbox[0], limits=BombLimits(1 << 16, 100, 1 << 30))


def test_wrong_diff_id(sandbox: tuple[Path, Path]) -> None:
    raw = _tar(_entry("f", data=b"x"))
    with pytest.raises(VerificationFailed, match="diff_id"):
        unpack_layer([raw], "none", sandbox[0], Digest.of(b"other"), LIMITS)


@pytest.mark.parametrize("blob, compression, message", [
    (b"not gzip at all", "gzip", "not valid gzip"),
    (gzip.compress(b"x" * 2000)[:-30], "gzip", "ends before"),
    (b"\x28\xb5\x2f\xfd garbage", "zstd", "not valid zstd"),
    (b"x" * 2000, "none", "not a valid tar"),
])
def test_corrupt_streams(sandbox: tuple[Path, Path], blob: bytes, compression: str,
                         message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        unpack_layer([blob], compression, sandbox[0], Digest.of(b""), LIMITS)


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_entries_kept(sandbox: tuple[Path, Path], compression: str) -> None:
    raw = _tar(
        _entry("d", tarfile.DIRTYPE, mode=0o750),
        _entry("d/f", data=b"hello", mode=0o4755, **{"SCHILY.xattr.user.k": "v",
                                                     "SCHILY.xattr.trusted.overlay.x": "no"}),
        _entry("d/h", tarfile.LNKTYPE, link="d/f"),
        _entry("d/s", tarfile.SYMTYPE, link="/abs/target"),
        _entry("implicit/parent/file", data=b"p"),
        _entry("d/f2", data=b"first"), _entry("d/f2", data=b"second"),
    )
    blob = {"none": raw, "gzip": gzip.compress(raw) + gzip.compress(b"") + b"\0" * 10,
            "zstd": zstandard.ZstdCompressor().compress(raw)}[compression]
    layer = sandbox[0]
    stats = _unpack(raw, layer, compression, blob)
    f = layer / "d" / "f"
    assert (f.read_bytes(), stat.S_IMODE(f.stat().st_mode), f.stat().st_mtime) == (
        b"hello", 0o4755, 1_700_000_000)
    assert os.getxattr(f, "user.k") == b"v"
    assert "trusted.overlay.x" not in os.listxattr(f)
    assert (layer / "d" / "h").stat().st_ino == f.stat().st_ino
    assert os.readlink(layer / "d" / "s") == "/abs/target"
    assert (layer / "d" / "f2").read_bytes() == b"second"
    assert stat.S_IMODE((layer / "d").stat().st_mode) == 0o750
    assert (layer / "d").stat().st_mtime == 1_700_000_000
    assert stats.size == 5 + 1 + 5 + 6  # type: ignore[attr-defined]


@pytest.mark.skipif(not ROOT, reason="whiteouts are char devices and trusted xattrs: root")
def test_whiteouts_become_overlay_whiteouts(sandbox: tuple[Path, Path]) -> None:
    raw = _tar(_entry("d", tarfile.DIRTYPE), _entry("d/.wh..wh..opq", data=b""),
               _entry("d/.wh.gone", data=b""), _entry(".wh..wh.plnk", data=b""),
               _entry("d/new", data=b"n"))
    layer = sandbox[0]
    _unpack(raw, layer)
    st = os.lstat(layer / "d" / "gone")
    assert (stat.S_ISCHR(st.st_mode), st.st_rdev) == (True, 0)
    assert os.getxattr(layer / "d", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(layer)) == ["d"]
    assert sorted(os.listdir(layer / "d")) == ["gone", "new"]
