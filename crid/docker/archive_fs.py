"""A Docker container's filesystem as `docker cp` reaches it, and paths resolved inside it.

A running container is reached through `/proc/<pid>/root` (its own mount namespace: its bind
mounts, /etc/hosts and tmpfs are what the client sees, as Docker mounts volumes for `cp`); a
stopped one through its rootfs mount, which stays mounted until the container is removed,
except below a bind mount's or volume's target: there its directory is the root (what the
container would see there once started, as Docker mounts volumes for `cp`).
Every path is resolved with the container's root as `/` (symlinks, `..` and absolute links
never leave it): lexically with `secure_join` to name things, then opened with
openat2(RESOLVE_IN_ROOT) so a rename racing with the resolution cannot lead outside either.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from crid.docker.containers_view import DockerContainer
from crid.docker.create_body import BindMount
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.errors import NotFound
from runtime.api import process_start_time
from runtime.linux import libc
from runtime.linux.securejoin import UnsafePath, secure_join

DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS
# Kernel filesystems of a running container's namespace that `cp` never descends into
# (they are not the container's files; /proc would be endless).
PSEUDO_FS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs",
                       "debugfs", "tracefs", "bpf", "fusectl", "configfs", "pstore"})


@dataclass(frozen=True)
class ContainerRoot:
    """An open container root: `fd` (O_PATH) is `/`; `path` names it for lexical resolution."""

    fd: int
    path: str
    pseudo_devs: frozenset[int]  # st_dev of the kernel filesystems mounted in it


@dataclass(frozen=True)
class PathStat:
    """Docker's ContainerPathStat (the X-Docker-Container-Path-Stat header)."""

    name: str
    size: int
    mode: int  # Go's os.FileMode bits
    mtime_ns: int
    link_target: str


@dataclass(frozen=True)
class Located:
    """Where a client's path is: the root to resolve it in, the path inside that root, and
    the bind mount that root is (a stopped container's bind source), if any."""

    root: ContainerRoot
    path: str
    bind: BindMount | None = None


@contextlib.contextmanager
def locate(d: DockerDeps, c: DockerContainer, path: str) -> Iterator[Located]:
    """The root holding `path` (from `absolute`), open for the block.

    Raises:
        Conflict: the container has no filesystem (its CRI container is gone).
    """
    bind = None if c.running else _bind_of(d, c, path)
    if bind is None:
        with open_root(d, c) as root:
            yield Located(root, path)
        return
    rest = path[len(bind.target.rstrip("/")):] or "/"
    try:
        fd = os.open(bind.source, DIR_PATH)
    except OSError as e:
        raise Conflict(f"container {c.id}: bind mount {bind.source} cannot be opened: "
                       f"{e.strerror}") from e
    try:
        yield Located(ContainerRoot(fd, bind.source, frozenset()), rest, bind)
    finally:
        os.close(fd)


def _bind_of(d: DockerDeps, c: DockerContainer, path: str) -> BindMount | None:
    """The innermost directory bind or volume whose target holds `path` (lexically), as a
    bind of its directory."""
    mounts = list(c.body.binds)
    for v in c.body.volumes:
        with contextlib.suppress(NotFound):
            mounts.append(BindMount(str(d.volumes.get(v.name).mountpoint), v.target,
                                    v.readonly))

    def holds(b: BindMount) -> bool:
        top = b.target.rstrip("/")
        return bool(top) and (path == top or path.startswith(top + "/")) and \
            os.path.isdir(b.source)
    return max((b for b in mounts if holds(b)), key=lambda b: len(b.target), default=None)


@contextlib.contextmanager
def open_root(d: DockerDeps, c: DockerContainer) -> Iterator[ContainerRoot]:
    """The container's root, open for the block.

    Raises:
        Conflict: the container has no filesystem (its CRI container is gone).
    """
    if c.record is None or not c.record.rootfs:
        raise Conflict(f"container {c.id} has no filesystem (it was never created)")
    state = d.runtime.rt.store.load(c.record.id) if c.running else None
    fd, path, devs = -1, c.record.rootfs, frozenset[int]()
    if state is not None and state.pid > 0:
        with contextlib.suppress(OSError):
            fd = os.open(f"/proc/{state.pid}/root", DIR_PATH)
            # The pid may have been recycled between the record and the open: it only
            # counts while its start time is the container's.
            if process_start_time(state.pid) == state.pid_start:
                path = f"/proc/{state.pid}/root"
                devs = _pseudo_devs(state.pid)
            else:
                os.close(fd)
                fd = -1
    if fd < 0:
        try:
            fd = os.open(path, DIR_PATH)
        except OSError as e:
            raise Conflict(f"container {c.id}: its filesystem cannot be opened: {e}") from e
    try:
        yield ContainerRoot(fd, path, devs)
    finally:
        os.close(fd)


def _pseudo_devs(pid: int) -> frozenset[int]:
    devs = set()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in PSEUDO_FS:
                major, _, minor = fields[2].partition(":")
                devs.add(os.makedev(int(major), int(minor)))
    return frozenset(devs)


def absolute(path: str) -> str:
    """The client's path as absolute in the container, keeping a trailing `/` or `/.`
    (Docker's PreserveTrailingDotOrSeparator: they change what is archived).

    Raises:
        BadRequest: empty or with a NUL.
    """
    if not path or "\0" in path:
        raise BadRequest("Bad parameter: 'path' cannot be empty" if not path else
                         "Bad parameter: 'path' contains a NUL byte")
    clean = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/.") or path == ".":
        return clean.rstrip("/") + "/."
    if path.endswith("/") and clean != "/":
        return clean + "/"
    return clean


def inner(root: ContainerRoot, path: str, follow_last: bool) -> str:
    """`path` (absolute in the container) with its symlinks resolved inside the root, as a
    relative path from the root ("." for the root). Without `follow_last` the last component
    stays as it is (a symlink is itself the resource)."""
    head, base = posixpath.split(path)
    if follow_last or base in ("", "."):
        head, base = path, ""
    try:
        joined = secure_join(root.path, head)
    except UnsafePath as e:
        raise BadRequest(f"path {path[:200]!r}: {e.strerror or e}") from None
    rel = posixpath.relpath(joined, os.path.abspath(root.path))
    return posixpath.normpath(posixpath.join(rel, base)) if base else rel


def open_at(root: ContainerRoot, rel: str, flags: int) -> int:
    """Opens `rel` (from `inner`) below the root; the kernel keeps it inside.

    Raises:
        OSError: as openat2 fails (ENOENT, ENOTDIR, ...).
    """
    return libc.openat2(root.fd, rel, flags | os.O_CLOEXEC, IN_ROOT)


def split_rel(rel: str) -> tuple[str, str]:
    """(parent, name) of a resolved relative path; the root itself is (".", ".")."""
    if rel in (".", ""):
        return ".", "."
    head, base = posixpath.split(rel)
    return head or ".", base


def lstat_at(root: ContainerRoot, rel: str) -> os.stat_result:
    """lstat of the resolved path (its last component not followed).

    Raises:
        OSError: ENOENT and the like.
    """
    parent, name = split_rel(rel)
    fd = open_at(root, parent, DIR_PATH)
    try:
        return os.lstat(name, dir_fd=fd)
    finally:
        os.close(fd)


def stat_path(root: ContainerRoot, path: str, container: str, name: str = "",
              mount: str = "/") -> tuple[str, PathStat]:
    """(resolved relative path, its stat) of `path` (from `absolute`), as Docker's StatPath;
    `name` is the client's path and `mount` the bind's target when `path` is inside a bind's
    root instead.

    Raises:
        NotFound: the path does not exist in the container; BadRequest: it goes through a
        file (ENOTDIR) or loops.
    """
    rel = inner(root, path, follow_last=False)
    try:
        st = lstat_at(root, rel)
    except OSError as e:
        raise path_error(e, name or path, container) from None
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = posixpath.normpath(posixpath.join(mount, inner(root, path, follow_last=True)))
    return rel, PathStat(go_base(name or path), st.st_size, go_mode(st.st_mode),
                         st.st_mtime_ns, link)


def path_error(e: OSError, path: str, container: str) -> Exception:
    """The Docker error for a failed lookup of `path`."""
    if e.errno == errno.ENOENT:
        return NotFound(f"Could not find the file {path[:300]} in container {container}")
    if e.errno in (errno.ENOTDIR, errno.ELOOP, errno.EXDEV, errno.ENAMETOOLONG):
        return BadRequest(f"path {path[:300]!r} in container {container}: "
                          f"{os.strerror(e.errno)}")
    return e


def go_base(path: str) -> str:
    """Go's filepath.Base: "/" for the root, "." for "/x/.", else the last name."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


_GO_TYPE = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISBLK, 1 << 26),
            (stat.S_ISCHR, (1 << 26) | (1 << 21)), (stat.S_ISFIFO, 1 << 25),
            (stat.S_ISSOCK, 1 << 24))


def go_mode(mode: int) -> int:
    """A st_mode as Go's os.FileMode (what the CLI reads: type bits high, perms low)."""
    out = mode & 0o777
    for test, bit in _GO_TYPE:
        if test(mode):
            out |= bit
            break
    if mode & stat.S_ISUID:
        out |= 1 << 23
    if mode & stat.S_ISGID:
        out |= 1 << 22
    if mode & stat.S_ISVTX:
        out |= 1 << 20
    return out
