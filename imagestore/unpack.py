"""Layer extraction in one pass: network chunks → digest → decompress → diff_id → tar → files.

`unpack_layer` writes into an empty directory of the caller's (a private temporary directory:
nothing is visible until the caller renames it into place after a successful return).

Safety: entry names are relative with no `..`; every parent component is opened with
O_NOFOLLOW|O_DIRECTORY from the layer's root fd, so no entry can be written through a symlink —
not even one created by an earlier entry of the same layer (such layers are refused: a tar made
from a real filesystem never needs one). Hard-link targets obey the same rules and must be in the
layer. Symlinks themselves are stored verbatim (absolute ones are legitimate: they resolve inside
the container's root at run time); nothing here ever follows one.

Kept: owners, modes (setuid included), mtimes, xattrs (file capabilities too), hard links,
symlinks, devices, fifos. `.wh.<name>` becomes an overlayfs whiteout (char device 0:0) and
`.wh..wh..opq` the opaque xattr on its directory. `trusted.overlay.*` xattrs in the tar are
dropped: only whiteouts may carry overlay semantics.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from imagestore.decompress import CHUNK, BombLimits, ChunkSource, Uncompressed, open_layer
from imagestore.digest import Digest
from imagestore.errors import ImageStoreError, InvalidImage, VerificationFailed

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_PATH_MAX = 4096  # Linux's PATH_MAX: a container could not open a longer path anyway
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class LayerStats:
    """What a layer holds once unpacked: diff_id, bytes of regular files, inodes created."""

    diff_id: Digest
    size: int
    inodes: int


def unpack_layer(chunks: Iterable[bytes], compression: str, dest: Path, diff_id: Digest,
                 limits: BombLimits) -> LayerStats:
    """Extract a layer's blob stream into the empty directory `dest`, checking its diff_id.

    `chunks` must verify the compressed digest itself when exhausted (the registry client
    does); this function reads it to the end.

    Raises:
        InvalidImage: bad compression or tar, an unsafe entry, a decompression bomb.
        VerificationFailed: the uncompressed stream's digest is not `diff_id`.
        RegistryUnavailable etc.: as raised by `chunks`.
    """
    source = ChunkSource(chunks)
    stream = open_layer(source, compression, limits)
    with _Extractor(dest) as ex:
        try:
            _extract_all(stream, ex)
            stream.drain()
        except VerificationFailed:
            raise
        except InvalidImage:
            # Corrupt data usually means a corrupt transfer: read the rest of the blob so that
            # a wrong digest is reported as such (the stream raises VerificationFailed).
            source.drain()
            raise
        source.drain()
    got = Digest("sha256", stream.hasher.hexdigest())
    if got != diff_id:
        raise VerificationFailed(f"layer content has diff_id {got}, the config says {diff_id}")
    return LayerStats(got, ex.size, ex.inodes)


def _extract_all(stream: Uncompressed, ex: _Extractor) -> None:
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK,  # type: ignore[call-overload]
                          errors="surrogateescape") as tar:
            for member in tar:
                ex.add(tar, member)
    except tarfile.TarError as e:
        raise InvalidImage(f"layer is not a valid tar: {e}") from None


class _Extractor:
    """Creates entries below a root fd; never follows a symlink."""

    def __init__(self, root: Path) -> None:
        self._root = os.open(root, _DIR_FLAGS)
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dir_times: list[tuple[list[str], int, int]] = []
        self.size = 0
        self.inodes = 0

    def __enter__(self) -> _Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._set_dir_times()
        finally:
            self._drop_cache()
            os.close(self._root)

    def add(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        """Create the entry `m` (its data read from `tar`). Raises InvalidImage."""
        parts = _components(m.name, "entry")
        if not parts:
            return  # the layer root itself: its metadata is the layer directory's own
        try:
            if parts[-1].startswith(WHITEOUT):
                self._whiteout(parts)
            else:
                self._create(tar, m, parts)
        except ImageStoreError:
            raise
        except OSError as e:
            if e.errno in _STORAGE_ERRNOS:  # our disk, not the image, is at fault
                raise ImageStoreError(f"writing layer entry {m.name!r:.200}: {e}") from None
            raise InvalidImage(f"extracting layer entry {m.name!r:.200}: {e}") from None
        except (OverflowError, ValueError) as e:  # ids, times or device numbers out of range
            raise InvalidImage(f"layer entry {m.name!r:.200} has a bad field: {e}") from None

    def _create(self, tar: tarfile.TarFile, m: tarfile.TarInfo, parts: list[str]) -> None:
        pfd, base = self._parent(parts), parts[-1]
        if m.isdir():
            self._mkdir(pfd, base)
            self._metadata(pfd, base, m)
            self._dir_times.append((parts, *_times(m)))
            self.inodes += 1
            return
        self._remove(pfd, base)
        if m.isreg():
            self._write_file(tar, m, pfd, base)
        elif m.islnk():
            self._hardlink(m, pfd, base)
        else:
            self._special(m, pfd, base)
            self._metadata(pfd, base, m)
        self.inodes += 1

    def _write_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(m)
            assert src is not None
            with open(fd, "wb", closefd=False) as out:
                shutil.copyfileobj(src, out, CHUNK)
            self._metadata(pfd, base, m, fd)
        finally:
            os.close(fd)
        self.size += m.size

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        target = _components(m.linkname, "hard link target")
        if not target:
            raise InvalidImage(f"hard link {m.name!r:.200} points at the layer root")
        tfd = self._walk(target[:-1], create=False, what=f"hard link target {m.linkname!r:.200}")
        try:
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidImage(f"hard link {m.name!r:.200} → {m.linkname!r:.200}: "
                               "the target is not in this layer") from None
        finally:
            os.close(tfd)

    def _special(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        if m.issym():
            if "\0" in m.linkname:
                raise InvalidImage(f"symlink {m.name!r:.200} has a NUL in its target")
            os.symlink(m.linkname, base, dir_fd=pfd)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            raise InvalidImage(f"layer entry {m.name!r:.200} has unsupported type {m.type!r}")

    def _whiteout(self, parts: list[str]) -> None:
        pfd, base = self._parent(parts), parts[-1]
        if base == OPAQUE:
            os.setxattr(f"/proc/self/fd/{pfd}", "trusted.overlay.opaque", b"y")
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless for overlayfs
        name = base[len(WHITEOUT):]
        if not name or name in (".", ".."):
            raise InvalidImage(f"whiteout {'/'.join(parts)!r:.200} names nothing")
        self._remove(pfd, name)
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        self.inodes += 1

    def _mkdir(self, pfd: int, base: str) -> None:
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
            return
        if not stat.S_ISDIR(st.st_mode):
            self._remove(pfd, base)
            os.mkdir(base, 0o700, dir_fd=pfd)

    def _remove(self, pfd: int, base: str) -> None:
        """Remove an earlier entry of the same name (tar semantics: the later one wins).

        `pfd` must be the cached parent fd (from `_parent`)."""
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def _metadata(self, pfd: int, base: str, m: tarfile.TarInfo, fd: int | None = None) -> None:
        # Order matters: chown clears setuid bits and security.capability, so it goes first.
        path = f"/proc/self/fd/{pfd}/{base}"
        if fd is not None:
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode)
        else:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            if not m.issym():
                os.chmod(base, m.mode, dir_fd=pfd)
        for name, value in _xattrs(m):
            try:
                if fd is not None:
                    os.setxattr(fd, name, value)
                else:
                    os.setxattr(path, name, value, follow_symlinks=False)
            except PermissionError:
                if not m.issym():  # user.* xattrs are not allowed on symlinks
                    raise
        if fd is not None:
            os.utime(fd, ns=_times(m))
        elif not m.isdir():
            os.utime(base, ns=_times(m), dir_fd=pfd, follow_symlinks=False)

    def _parent(self, parts: list[str]) -> int:
        """The fd of `parts`' parent directory, creating missing ones (cached, not to close)."""
        key = tuple(parts[:-1])
        if self._cached and self._cached[0] == key:
            return self._cached[1]
        fd = self._walk(list(key), create=True, what=f"entry {'/'.join(parts)!r:.200}")
        self._drop_cache()
        self._cached = (key, fd)
        return fd

    def _walk(self, dirs: list[str], create: bool, what: str) -> int:
        """Open `dirs` below the root one component at a time, never following a symlink."""
        fd = os.dup(self._root)
        try:
            for comp in dirs:
                nfd = self._step(fd, comp, create, what)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, fd: int, comp: str, create: bool, what: str) -> int:
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise InvalidImage(f"{what}: {comp!r:.100} is not in this layer") from None
            os.mkdir(comp, 0o755, dir_fd=fd)
            self.inodes += 1
            return os.open(comp, _DIR_FLAGS, dir_fd=fd)
        except OSError:  # ELOOP: a symlink; ENOTDIR: a file
            kind = "a symlink" if stat.S_ISLNK(os.lstat(comp, dir_fd=fd).st_mode) else "not a dir"
            raise InvalidImage(f"{what} goes through {comp!r:.100}, which is {kind}: "
                               "refused (it could lead outside the layer)") from None

    def _drop_cache(self) -> None:
        if self._cached:
            os.close(self._cached[1])
            self._cached = None

    def _set_dir_times(self) -> None:
        for parts, atime, mtime in reversed(self._dir_times):
            try:
                pfd = self._walk(parts[:-1], create=False, what="directory")
            except (OSError, InvalidImage):
                continue  # replaced or removed by a later entry
            try:
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except OSError:
                pass
            finally:
                os.close(pfd)


def _components(name: str, what: str) -> list[str]:
    """The path components of a tar name; refuses absolute names, `..` and NUL."""
    if "\0" in name:
        raise InvalidImage(f"layer {what} {name!r:.200} contains a NUL byte")
    if len(name.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise InvalidImage(f"layer {what} {name!r:.200}… is longer than {_PATH_MAX} bytes")
    if name.startswith("/"):
        raise InvalidImage(f"layer {what} {name!r:.200} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidImage(f"layer {what} {name!r:.200} contains '..'")
    return parts


def _xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in m.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if name.startswith("trusted.overlay."):
            continue
        out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def _times(m: tarfile.TarInfo) -> tuple[int, int]:
    mtime = _ns(m.pax_headers.get("mtime"), m.mtime)
    atime = m.pax_headers.get("atime")
    return (_ns(atime, m.mtime) if atime else mtime), mtime


def _ns(text: str | None, fallback: float) -> int:
    """Nanoseconds from a pax decimal time (exact), else from the header's seconds."""
    if text:
        try:
            return int(Decimal(text) * 1_000_000_000)
        except (InvalidOperation, ValueError):
            pass
    return int(fallback) * 1_000_000_000 if float(fallback).is_integer() \
        else int(Decimal(str(fallback)) * 1_000_000_000)
