"""`docker cp` out of a container: a tar stream of one resource, read below the container root.

Entries are named as Docker's TarResourceRebase names them: the resource itself under the
base name of the requested path (`/etc` → `etc/...`, `/etc/.` → `./...`, `/` → `/...`), so the
client's own rebasing (its `docker cp ctr:/a b` renames) works unchanged. Every file is opened
relative to its parent's fd without following symlinks (a symlink is archived as a link), and
the kernel filesystems mounted in a running container (/proc, /sys, ...) are archived as
empty directories.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator

from crid import logs
from crid.docker.archive_fs import DIR_PATH, ContainerRoot, open_at, split_rel

log = logs.get("crid.docker")
BLOCK = tarfile.BLOCKSIZE
CHUNK = 1 << 20
_DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class _Writer:
    def __init__(self, root: ContainerRoot) -> None:
        self._root = root
        self._links: dict[tuple[int, int], str] = {}

    def entry(self, pfd: int, name: str, arcname: str) -> Iterator[bytes]:
        """The tar entries of `name` in the directory `pfd` (recursively for a directory)."""
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return  # removed while we walked: archived as it is now
        info = _info(arcname, st)
        if stat.S_ISSOCK(st.st_mode):
            return  # sockets have no tar form (Go's archive/tar refuses them too)
        if stat.S_ISLNK(st.st_mode):
            info.linkname = os.readlink(name, dir_fd=pfd)
        elif not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            first = self._links.setdefault((st.st_dev, st.st_ino), arcname)
            if first != arcname:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        if stat.S_ISREG(st.st_mode) and info.type == tarfile.REGTYPE:
            yield from self._file(pfd, name, info)
        elif stat.S_ISDIR(st.st_mode):
            yield _header(info)
            if st.st_dev not in self._root.pseudo_devs:
                yield from self._children(pfd, name, arcname)
        else:
            yield _header(info)

    def _file(self, pfd: int, name: str, info: tarfile.TarInfo) -> Iterator[bytes]:
        try:
            fd = os.open(name, _FILE_READ, dir_fd=pfd)
        except OSError as e:
            log.debug("docker cp skipped a file", name=info.name, error=str(e))
            return
        try:
            yield _header(info)
            left = info.size
            while left > 0:
                data = os.read(fd, min(CHUNK, left))
                if not data:  # shrank while we read: the header's size is what we owe
                    data = bytes(min(CHUNK, left))
                left -= len(data)
                yield data
            if info.size % BLOCK:
                yield bytes(BLOCK - info.size % BLOCK)
        finally:
            os.close(fd)

    def _children(self, pfd: int, name: str, arcname: str) -> Iterator[bytes]:
        try:
            fd = os.open(name, _DIR_READ, dir_fd=pfd)
        except OSError as e:
            log.debug("docker cp skipped a directory", name=arcname, error=str(e))
            return
        try:
            names = sorted(os.listdir(fd))
            for child in names:
                yield from self.entry(fd, child, posixpath.join(arcname, child))
        finally:
            os.close(fd)


def _info(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    info.size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    kinds = ((stat.S_ISREG, tarfile.REGTYPE), (stat.S_ISDIR, tarfile.DIRTYPE),
             (stat.S_ISLNK, tarfile.SYMTYPE), (stat.S_ISCHR, tarfile.CHRTYPE),
             (stat.S_ISBLK, tarfile.BLKTYPE), (stat.S_ISFIFO, tarfile.FIFOTYPE))
    info.type = next((kind for test, kind in kinds if test(st.st_mode)), tarfile.REGTYPE)
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_resource(root: ContainerRoot, rel: str, rebase: str) -> Iterator[bytes]:
    """The tar stream of the resource at `rel` (from archive_fs.inner), its entries named
    from `rebase`; ends with tar's two zero blocks."""
    parent, name = split_rel(rel)
    pfd = open_at(root, parent, DIR_PATH)
    try:
        yield from _Writer(root).entry(pfd, name, rebase)
    finally:
        os.close(pfd)
    yield bytes(2 * BLOCK)
