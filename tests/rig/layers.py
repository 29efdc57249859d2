"""Layer tarballs for test images: entries → deterministic tar → gzip / zstd / none.

An `Entry` is one tar member described as data (path, kind, bytes, mode, owner, xattrs, link
target, device numbers). `build_layer` sorts entries, adds missing parent directories (0755,
root), gives every member a fixed mtime unless the entry sets one, writes a PAX tar (xattrs as
`SCHILY.xattr.*`), and compresses it; the result carries both the blob digest and the diff_id.
Building the same `LayerSpec` twice gives the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import zstandard

FIXED_MTIME = 1_700_000_000
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
COMPRESSIONS = ("gzip", "zstd", "none")

FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCK, FIFO = (
    "file", "dir", "symlink", "hardlink", "char", "block", "fifo",
)
_TAR_TYPES = {
    FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE,
    HARDLINK: tarfile.LNKTYPE, CHAR: tarfile.CHRTYPE, BLOCK: tarfile.BLKTYPE,
    FIFO: tarfile.FIFOTYPE,
}


class LayerError(Exception):
    """A layer description cannot be built (bad path, unknown kind or compression)."""


@dataclass(frozen=True)
class Entry:
    """One tar member. `path` is relative ("bin/sh"); `target` is a symlink's target or a hard
    link's source path; `mode` holds permission bits including setuid/setgid/sticky."""

    path: str
    kind: str = FILE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    major: int = 0
    minor: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    mtime: int | None = None


@dataclass(frozen=True)
class LayerSpec:
    """What goes into one layer and how it is compressed ("gzip", "zstd" or "none")."""

    entries: tuple[Entry, ...]
    compression: str = "gzip"
    mtime: int = FIXED_MTIME
    gzip_level: int = 6


@dataclass(frozen=True)
class BuiltLayer:
    """A layer blob: `data` (compressed), its `digest` and `size`, the uncompressed `diff_id`,
    and the normalised `entries` it holds (sorted, with parents, mtimes filled in)."""

    data: bytes
    digest: str
    size: int
    diff_id: str
    compression: str
    entries: tuple[Entry, ...]


# -- entry helpers ------------------------------------------------------------------------

def file(path: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
         xattrs: Mapping[str, bytes] | None = None, mtime: int | None = None) -> Entry:
    return Entry(path, FILE, data, mode, uid, gid, xattrs=dict(xattrs or {}), mtime=mtime)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0,
              xattrs: Mapping[str, bytes] | None = None) -> Entry:
    return Entry(path, DIR, mode=mode, uid=uid, gid=gid, xattrs=dict(xattrs or {}))


def symlink(path: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, SYMLINK, mode=0o777, uid=uid, gid=gid, target=target)


def hardlink(path: str, target: str) -> Entry:
    """A hard link `path` to the earlier member `target` (it takes the target's metadata)."""
    return Entry(path, HARDLINK, target=target)


def char_device(path: str, major: int, minor: int, mode: int = 0o666) -> Entry:
    return Entry(path, CHAR, mode=mode, major=major, minor=minor)


def block_device(path: str, major: int, minor: int, mode: int = 0o660) -> Entry:
    return Entry(path, BLOCK, mode=mode, major=major, minor=minor)


def fifo(path: str, mode: int = 0o644) -> Entry:
    return Entry(path, FIFO, mode=mode)


def whiteout(path: str) -> Entry:
    """Delete `path` (from lower layers): the AUFS-style `.wh.<name>` marker."""
    parent, name = _split(path)
    return Entry(_join(parent, WHITEOUT_PREFIX + name), FILE, mode=0o644)


def opaque(path: str) -> Entry:
    """Hide everything lower layers put under directory `path`: `.wh..wh..opq`."""
    return Entry(_join(path, OPAQUE_MARKER), FILE, mode=0o644)


def file_capability(*caps: int, effective: bool = True) -> bytes:
    """A `security.capability` value (VFS_CAP_REVISION_2) granting `caps` as permitted."""
    low = high = 0
    for cap in caps:
        if cap < 32:
            low |= 1 << cap
        else:
            high |= 1 << (cap - 32)
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, low, 0, high, 0)


# -- building -----------------------------------------------------------------------------

def build_layer(spec: LayerSpec) -> BuiltLayer:
    """Tar and compress `spec`. Raises LayerError for bad paths, kinds or compression."""
    if spec.compression not in COMPRESSIONS:
        raise LayerError(f"unknown layer compression {spec.compression!r}")
    entries = normalise(spec.entries, spec.mtime)
    raw = tar_bytes(entries)
    data = compress(raw, spec.compression, spec.gzip_level)
    return BuiltLayer(
        data=data, digest=sha256_digest(data), size=len(data), diff_id=sha256_digest(raw),
        compression=spec.compression, entries=entries,
    )


def normalise(entries: Iterable[Entry], mtime: int = FIXED_MTIME) -> tuple[Entry, ...]:
    """Checked, parent-complete, mtime-filled entries in tar order (hard links last)."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        if entry.kind not in _TAR_TYPES:
            raise LayerError(f"entry {entry.path!r}: unknown kind {entry.kind!r}")
        path = _clean(entry.path)
        when = mtime if entry.mtime is None else entry.mtime
        by_path[path] = replace(entry, path=path, mtime=when)
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            key = str(parent)
            if key != "." and key not in by_path:
                by_path[key] = Entry(key, DIR, mode=0o755, mtime=mtime)
    return tuple(sorted(by_path.values(), key=lambda e: (e.kind == HARDLINK, e.path)))


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = _tarinfo(entry)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == FILE else None)
    return buf.getvalue()


def compress(raw: bytes, compression: str, gzip_level: int = 6) -> bytes:
    if compression == "gzip":
        return gzip.compress(raw, compresslevel=gzip_level, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(raw)
    return raw


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tarinfo(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = entry.mode & 0o7777
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime or 0
    info.size = len(entry.data) if entry.kind == FILE else 0
    info.linkname = entry.target if entry.kind in (SYMLINK, HARDLINK) else ""
    info.devmajor, info.devminor = entry.major, entry.minor
    # tarfile writes non-UTF-8 PAX values raw (hdrcharset=BINARY) when given surrogateescape'd
    # strings: the only way to carry binary xattrs such as security.capability.
    info.pax_headers = {
        f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
        for k, v in sorted(entry.xattrs.items())
    }
    return info


def _clean(path: str) -> str:
    p = PurePosixPath(path.lstrip("/"))
    if not path.strip("/") or ".." in p.parts:
        raise LayerError(f"entry path {path!r} must be a relative path without '..'")
    return str(p)


def _split(path: str) -> tuple[str, str]:
    p = PurePosixPath(_clean(path))
    return ("" if str(p.parent) == "." else str(p.parent)), p.name


def _join(parent: str, name: str) -> str:
    return f"{parent.strip('/')}/{name}" if parent.strip("/") else name


# -- from a directory on disk -------------------------------------------------------------

def entries_from_tree(root: Path) -> tuple[Entry, ...]:
    """Read a source tree into entries: modes, owners, xattrs, mtimes, hard links (the first
    path in sorted order carries the data), symlinks, devices, fifos. Overlay whiteouts
    (char 0:0) become `.wh.` entries and `trusted.overlay.opaque=y` an opaque marker."""
    entries: list[Entry] = []
    first_path: dict[tuple[int, int], str] = {}
    for path in sorted(_walk(root)):
        rel = str(path.relative_to(root))
        st = os.lstat(path)
        xattrs = _xattrs(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            entries.append(whiteout(rel))
            continue
        if xattrs.pop("trusted.overlay.opaque", None) == b"y":
            entries.append(opaque(rel))
        entries.append(_entry_from_stat(path, rel, st, xattrs, first_path))
    return tuple(entries)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _entry_from_stat(path: Path, rel: str, st: os.stat_result, xattrs: dict[str, bytes],
                     first_path: dict[tuple[int, int], str]) -> Entry:
    common = dict(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                  xattrs=xattrs, mtime=int(st.st_mtime))
    if stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in first_path:
            return hardlink(rel, first_path[key])
        first_path[key] = rel
        return Entry(rel, FILE, path.read_bytes(), **common)  # type: ignore[arg-type]
    if stat.S_ISDIR(st.st_mode):
        return Entry(rel, DIR, **common)  # type: ignore[arg-type]
    if stat.S_ISLNK(st.st_mode):
        return Entry(rel, SYMLINK, target=os.readlink(path), **common)  # type: ignore[arg-type]
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = CHAR if stat.S_ISCHR(st.st_mode) else BLOCK
        return Entry(rel, kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                     **common)  # type: ignore[arg-type]
    if stat.S_ISFIFO(st.st_mode):
        return Entry(rel, FIFO, **common)  # type: ignore[arg-type]
    raise LayerError(f"reading source tree: {path} is a socket or unknown file type")


def _xattrs(path: Path) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names)}
