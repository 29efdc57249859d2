"""The layer builder: deterministic tars, PAX xattrs, digests, entry normalisation."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard

from tests.rig import layers as L


def _members(raw: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.getmembers()


def _spec(compression: str = "gzip") -> L.LayerSpec:
    return L.LayerSpec((
        L.file("a/b/c.txt", b"hello", 0o640, 1000, 1001),
        L.file("a/cap", b"x", xattrs={"security.capability": L.file_capability(10)}),
        L.hardlink("a/link", "a/b/c.txt"),
        L.symlink("a/sym", "/etc/passwd"),
        L.char_device("a/null", 1, 3),
        L.fifo("a/fifo"),
        L.whiteout("old/thing"),
        L.opaque("opq"),
    ), compression)


def test_same_spec_gives_same_bytes() -> None:
    assert L.build_layer(_spec()).data == L.build_layer(_spec()).data


@pytest.mark.parametrize("compression", L.COMPRESSIONS)
def test_digest_and_diff_id(compression: str) -> None:
    layer = L.build_layer(_spec(compression))
    assert layer.digest == "sha256:" + hashlib.sha256(layer.data).hexdigest()
    assert layer.size == len(layer.data)
    raw = {"gzip": gzip.decompress, "none": lambda d: d,
           "zstd": lambda d: zstandard.ZstdDecompressor().decompress(d)}[compression](layer.data)
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_members_sorted_with_parents_and_fixed_mtime() -> None:
    raw = gzip.decompress(L.build_layer(_spec()).data)
    members = _members(raw)
    names = [m.name for m in members]
    assert names == ["a", "a/b", "a/b/c.txt", "a/cap", "a/fifo", "a/null", "a/sym", "old",
                     "old/.wh.thing", "opq", "opq/.wh..wh..opq", "a/link"]
    assert {m.mtime for m in members} == {L.FIXED_MTIME}
    by_name = {m.name: m for m in members}
    assert (by_name["a/b/c.txt"].mode, by_name["a/b/c.txt"].uid) == (0o640, 1000)
    assert by_name["a/link"].islnk() and by_name["a/link"].linkname == "a/b/c.txt"
    assert by_name["a/sym"].issym() and by_name["a/sym"].linkname == "/etc/passwd"
    assert (by_name["a/null"].devmajor, by_name["a/null"].devminor) == (1, 3)
    assert by_name["a/fifo"].isfifo()
    assert by_name["a"].isdir() and by_name["a"].mode == 0o755


def test_binary_xattr_survives_pax() -> None:
    raw = gzip.decompress(L.build_layer(_spec()).data)
    cap = {m.name: m for m in _members(raw)}["a/cap"]
    value = cap.pax_headers["SCHILY.xattr.security.capability"]
    assert value.encode("utf-8", "surrogateescape") == L.file_capability(10)


def test_file_capability_layout() -> None:
    assert L.file_capability(10) == bytes.fromhex("01000002" "00040000" + "00000000" * 3)
    assert L.file_capability(33, effective=False)[:4] == bytes.fromhex("00000002")


@pytest.mark.parametrize("path", ["", "/", "a/../../etc", ".."])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(L.LayerError):
        L.build_layer(L.LayerSpec((L.file(path, b"x"),)))


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(L.LayerError, match="brotli"):
        L.build_layer(L.LayerSpec((L.file("x"),), "brotli"))


def test_entries_from_tree_reads_files_links_and_modes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "d").mkdir(mode=0o750)
    (tmp_path / "d" / "f").write_bytes(b"data")
    (tmp_path / "d" / "f").chmod(0o600)
    (tmp_path / "d" / "h").hardlink_to(tmp_path / "d" / "f")
    (tmp_path / "s").symlink_to("d/f")
    entries = {e.path: e for e in L.entries_from_tree(tmp_path)}
    assert entries["d"].kind == L.DIR and entries["d"].mode == 0o750
    assert entries["d/f"].data == b"data" and entries["d/f"].mode == 0o600
    assert entries["d/h"].kind == L.HARDLINK and entries["d/h"].target == "d/f"
    assert entries["s"].kind == L.SYMLINK and entries["s"].target == "d/f"
