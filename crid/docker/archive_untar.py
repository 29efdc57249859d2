"""`docker cp` into a container: a client's tar archive, checked whole, then extracted below
a directory of the container.

The archive is hostile until checked, and it is checked before anything is written: entry
names and hard link targets that climb out of the destination with `..`, relative symlinks
whose target does (Docker's breakout check), NULs, devices, and, with
`noOverwriteDirNonDir`, a directory that would replace a file or the other way round, are
refused with BadRequest. Extraction then treats the destination as `/`: every parent is
opened with openat2(RESOLVE_IN_ROOT), so a symlink already in the container, or one the
archive itself makes (`a -> /`, then `a/etc/passwd`), resolves inside the destination,
as Docker's chrooted untar resolves it; the entry itself is created by name in that parent,
replacing (never following) what was there.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import IO

from crid.docker.errors import BadRequest
from crid.errors import PermissionDenied
from runtime.linux import libc

CHUNK = 1 << 20
IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS
_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class UntarOptions:
    keep_owner: bool = False  # copyUIDGID: the archive's uid/gid; else the container's root
    no_overwrite_dir_non_dir: bool = False


def clean_name(name: str, what: str = "entry") -> list[str]:
    """An archive name as components below the destination (a leading `/` is dropped, as
    Docker joins names to the destination).

    Raises:
        BadRequest: a NUL, or `..` that climbs out of the destination.
    """
    if "\0" in name:
        raise BadRequest(f"archive {what} {name[:200]!r} contains a NUL byte")
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise BadRequest(f"archive {what} {name[:200]!r} is outside of the "
                                 "destination directory")
            parts.pop()
            continue
        parts.append(comp)
    return parts


def check_archive(tar: tarfile.TarFile, dest_fd: int, opts: UntarOptions) -> None:
    """Reads the whole archive and refuses it if any entry is unsafe (nothing is written).

    Raises:
        BadRequest: an unsafe entry, or not a tar archive.
    """
    for m in tar:
        parts = clean_name(m.name)
        if m.ischr() or m.isblk():
            raise BadRequest(f"archive entry {m.name[:200]!r} is a device: refused")
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
            raise BadRequest(f"archive entry {m.name[:200]!r} has unsupported type {m.type!r}")
        if m.islnk():
            if not clean_name(m.linkname, "hard link target"):
                raise BadRequest(f"hard link {m.name[:200]!r} points at the destination itself")
        if m.issym():
            _check_symlink(m, parts)
        if opts.no_overwrite_dir_non_dir and parts:
            _check_overwrite(dest_fd, parts, m.isdir(), m.name)


def _check_symlink(m: tarfile.TarInfo, parts: list[str]) -> None:
    if "\0" in m.linkname:
        raise BadRequest(f"symlink {m.name[:200]!r} has a NUL in its target")
    if m.linkname.startswith("/"):
        return  # absolute: it resolves inside the container's root, whatever it names
    depth = len(parts) - 1
    for comp in m.linkname.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                raise BadRequest(f"symlink {m.name[:200]!r} -> {m.linkname[:200]!r} points "
                                 "outside of the destination directory")
        elif comp not in ("", "."):
            depth += 1


def _check_overwrite(dest_fd: int, parts: list[str], is_dir: bool, name: str) -> None:
    try:
        fd = libc.openat2(dest_fd, "/".join(parts), os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
                          IN_ROOT)
    except OSError:
        return  # not there (or not reachable): nothing to overwrite
    try:
        existing_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    if existing_dir and not is_dir:
        raise BadRequest(f"cannot overwrite directory {'/'.join(parts)[:200]!r} with "
                         f"non-directory {name[:200]!r}")
    if is_dir and not existing_dir:
        raise BadRequest(f"cannot overwrite non-directory {'/'.join(parts)[:200]!r} with "
                         f"directory {name[:200]!r}")


class Extractor:
    """Creates the archive's entries below `dest_fd` (an O_PATH directory fd)."""

    def __init__(self, dest_fd: int, opts: UntarOptions) -> None:
        self._dest, self._opts = dest_fd, opts
        self._dir_times: list[tuple[list[str], int, int]] = []

    def add(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        if not parts:
            return  # the destination itself keeps its owner and mode
        pfd = self._parent(parts[:-1])
        try:
            self._create(tar, m, pfd, parts[-1])
        finally:
            os.close(pfd)
        if m.isdir():
            self._dir_times.append((parts, int(m.mtime * 1e9), int(m.mtime * 1e9)))

    def finish(self) -> None:
        """Directory times last (creating their children changed them)."""
        for parts, atime, mtime in reversed(self._dir_times):
            try:
                fd = self._open("/".join(parts[:-1]) or ".")
            except OSError:
                continue
            try:
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=fd, follow_symlinks=False)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _open(self, rel: str) -> int:
        return libc.openat2(self._dest, rel, _DIR_PATH, IN_ROOT)

    def _parent(self, dirs: list[str]) -> int:
        """The parent directory, resolved inside the destination, made when missing."""
        fd = os.dup(self._dest)
        try:
            for i, comp in enumerate(dirs):
                rel = "/".join(dirs[: i + 1])
                try:
                    nfd = self._open(rel)
                except FileNotFoundError:
                    try:
                        os.mkdir(comp, 0o755, dir_fd=fd)
                    except FileExistsError:  # a dangling symlink: ENOENT, yet the name is taken
                        raise BadRequest(f"archive path {rel[:200]!r} goes through a "
                                         "symlink to nothing") from None
                    self._own(fd, comp, 0, 0)
                    nfd = self._open(rel)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        existing = _lstat(pfd, base)
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                self._replace(pfd, base, existing)
                os.mkdir(base, 0o700, dir_fd=pfd)
            self._metadata(pfd, base, m)
            return
        self._replace(pfd, base, existing)
        if m.isreg():
            self._write(tar, m, pfd, base)
            return
        if m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
        elif m.islnk():
            self._hardlink(m, pfd, base)
            return
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        self._metadata(pfd, base, m)

    def _replace(self, pfd: int, base: str, existing: os.stat_result | None) -> None:
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode):
            shutil.rmtree(base, dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def _write(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        fd = os.open(base, _NEW_FILE, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(m)
            assert src is not None
            with open(fd, "wb", closefd=False) as out:
                shutil.copyfileobj(src, out, CHUNK)
            os.fchown(fd, *self._owner(m))
            os.fchmod(fd, m.mode & 0o7777)
            os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
        finally:
            os.close(fd)

    def _hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        target = clean_name(m.linkname, "hard link target")
        tfd = self._open("/".join(target[:-1]) or ".")
        try:
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise BadRequest(f"hard link {m.name[:200]!r} -> {m.linkname[:200]!r}: the "
                             "target does not exist") from None
        finally:
            os.close(tfd)

    def _metadata(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        self._own(pfd, base, *self._owner(m))
        if not m.issym():
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
            if not m.isdir():
                os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd,
                         follow_symlinks=False)

    def _owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        return (m.uid, m.gid) if self._opts.keep_owner else (0, 0)

    @staticmethod
    def _own(pfd: int, base: str, uid: int, gid: int) -> None:
        os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)


def _lstat(pfd: int, base: str) -> os.stat_result | None:
    try:
        return os.lstat(base, dir_fd=pfd)
    except FileNotFoundError:
        return None


def extract(archive: IO[bytes], dest_fd: int, opts: UntarOptions) -> None:
    """Checks the seekable `archive` (plain, gzip, bzip2 or xz), then extracts it below
    `dest_fd`.

    Raises:
        BadRequest: not a tar archive or an unsafe entry (nothing written);
        PermissionDenied: a read-only filesystem; OSError: writing failed.
    """
    try:
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            check_archive(tar, dest_fd, opts)
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            ex = Extractor(dest_fd, opts)
            for m in tar:
                ex.add(tar, m)
            ex.finish()
    except tarfile.ReadError as e:
        raise BadRequest(f"the request body is not a tar archive: {e}") from None
    except (tarfile.TarError, EOFError) as e:
        raise BadRequest(f"the archive is corrupt: {e}") from None
    except OSError as e:
        if e.errno == errno.EROFS:
            raise PermissionDenied("container rootfs is marked read-only") from None
        raise
    except (OverflowError, ValueError) as e:
        raise BadRequest(f"an archive entry has a bad field: {e}") from None
