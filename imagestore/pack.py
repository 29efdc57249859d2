"""A layer tar from a directory of changes: the inverse of `unpack.unpack_layer`.

The directory is an overlayfs upper directory (a build step's or a container's writable layer)
or a plain tree (an imported root filesystem). Overlay whiteouts (char devices 0:0) become
`.wh.<name>` entries and opaque directories (`trusted.overlay.opaque=y`) a `.wh..wh..opq`
entry, as the image spec's changesets say. Entries are sorted and written in PAX format with
owners, modes, nanosecond mtimes, xattrs (file capabilities too) and hard links, so the same
tree always gives the same bytes, and so the same diff_id.

The tree may have been written by a container: nothing here follows a symlink (every entry is
opened relative to its parent's fd with O_NOFOLLOW), and sockets, which a tar cannot hold, are
left out, as Docker does.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from imagestore.digest import Digest
from imagestore.errors import ImageStoreError
from imagestore.unpack import OPAQUE, WHITEOUT

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackStats:
    """The tar written: its sha256 (the layer's diff_id), bytes, and entries."""

    diff_id: Digest
    size: int
    entries: int


class _Hashing:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


def pack_layer(root: str | os.PathLike[str], out: BinaryIO,
               exclude: Collection[str] = ()) -> PackStats:
    """Write the tar of the tree at `root` (its changes, as a layer) to `out`, without the
    entries (and what is below them) whose paths relative to `root` are in `exclude`.

    Raises:
        ImageStoreError: the tree cannot be read (the message names the entry).
    """
    sink = _Hashing(out)
    count = 0
    fd = os.open(root, _DIR)
    try:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                          encoding="utf-8", errors="surrogateescape") as tar:
            links: dict[tuple[int, int], str] = {}
            for info, data_fd in _walk(fd, "", links, frozenset(exclude)):
                try:
                    if data_fd is None:
                        tar.addfile(info)
                    else:
                        with os.fdopen(data_fd, "rb", closefd=True) as f:
                            tar.addfile(info, _Exact(f, info.size, info.name))
                finally:
                    count += 1
    finally:
        os.close(fd)
    return PackStats(Digest("sha256", sink.hasher.hexdigest()), sink.size, count)


def _walk(dir_fd: int, prefix: str, links: dict[tuple[int, int], str],
          exclude: frozenset[str]) -> Iterator[tuple[tarfile.TarInfo, int | None]]:
    names = sorted(os.listdir(dir_fd))
    for name in names:
        path = f"{prefix}{name}"
        if path in exclude:
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we walk (a running container): not part of the layer
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            yield _whiteout(prefix, name), None
        elif stat.S_ISDIR(st.st_mode):
            sub = _open(name, dir_fd, _DIR, path)
            try:
                opaque = is_opaque(sub)
                yield _info(path + "/", st, tarfile.DIRTYPE, _xattrs(sub)), None
                if opaque:
                    yield _whiteout(path + "/", OPAQUE[len(WHITEOUT):]), None
                yield from _walk(sub, path + "/", links, exclude)
            finally:
                os.close(sub)
        elif not stat.S_ISSOCK(st.st_mode):
            yield _entry(dir_fd, name, path, st, links)


def _entry(dir_fd: int, name: str, path: str, st: os.stat_result,
           links: dict[tuple[int, int], str]) -> tuple[tarfile.TarInfo, int | None]:
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
        first = links.get(key)
        if first is not None:
            info = _info(path, st, tarfile.LNKTYPE, {})
            info.linkname = first
            return info, None
        links[key] = path
    if stat.S_ISLNK(st.st_mode):
        info = _info(path, st, tarfile.SYMTYPE, {})
        info.linkname = os.readlink(name, dir_fd=dir_fd)
        return info, None
    if stat.S_ISREG(st.st_mode):
        fd = _open(name, dir_fd, _FILE, path)
        info = _info(path, os.fstat(fd), tarfile.REGTYPE, _xattrs(fd))
        return info, fd
    kind = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
            stat.S_IFIFO: tarfile.FIFOTYPE}[stat.S_IFMT(st.st_mode)]
    info = _info(path, st, kind, {})
    info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info, None


def _info(name: str, st: os.stat_result, kind: bytes, xattrs: dict[str, str]
          ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.rstrip("/") if kind != tarfile.DIRTYPE else name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = st.st_mtime_ns // 1_000_000_000
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    pax = {f"SCHILY.xattr.{k}": v for k, v in sorted(xattrs.items())}
    if st.st_mtime_ns % 1_000_000_000:
        pax["mtime"] = f"{st.st_mtime_ns // 1_000_000_000}.{st.st_mtime_ns % 1_000_000_000:09d}"
    info.pax_headers = pax
    return info


def _whiteout(prefix: str, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(f"{prefix}{WHITEOUT}{name}")
    info.mode = 0o644
    info.mtime = 0
    return info


def _open(name: str, dir_fd: int, flags: int, path: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as e:
        raise ImageStoreError(f"packing layer entry {path!r:.200}: {e}") from e


def is_opaque(fd: int) -> bool:
    """Whether the directory open at `fd` is an overlayfs opaque directory."""
    for key in _OPAQUE_XATTRS:
        try:
            if os.getxattr(fd, key) == b"y":
                return True
        except OSError:
            continue
    return False


def _xattrs(fd: int) -> dict[str, str]:
    """The entry's xattrs but overlayfs' own (they are the layer store's, never content)."""
    try:
        keys = os.listxattr(fd)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out = {}
    for key in keys:
        if key.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        try:
            out[key] = os.getxattr(fd, key).decode("utf-8", "surrogateescape")
        except OSError:
            continue
    return out


class _Exact:
    """A file's data as tarfile reads it, held to the size its header announced: a file that
    grows or shrinks while it is packed must not corrupt the archive."""

    def __init__(self, f: BinaryIO, size: int, name: str) -> None:
        self._f = f
        self._left = size
        self._name = name

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        data = self._f.read(want) if want else b""
        if len(data) < want:  # it shrank: pad, as GNU tar does, rather than misalign
            data += b"\0" * (want - len(data))
        self._left -= len(data)
        return data
