"""A container's changes to its image: what `docker diff` lists and `docker commit` packs.

Both read the container's writable layer (the overlayfs upper directory): an entry there is
added (absent from the image's layers), modified (present there), or deleted (a whiteout).
The empty files and directories the runtime made in it only to mount over (/etc/hosts,
/etc/resolv.conf, /dev/shm ... and parents it had to copy up for them) are not changes the
container made: Docker keeps those in an init layer of their own, so they are left out here.

Nothing here follows a symlink: the upper directory was written by the container, and the
layers are looked into one component at a time with O_NOFOLLOW.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from crid.containers.record import ContainerRecord
from crid.docker.containers_view import find
from crid.docker.deps import DockerDeps
from crid.docker.errors import Conflict
from crid.docker.http import Request, Response, json_response
from crid.docker.router import Router
from imagestore import is_opaque

MODIFIED, ADDED, DELETED = 0, 1, 2
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"  # the image spec's names (a layer from elsewhere)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Change:
    path: str  # absolute, in the container
    kind: int  # MODIFIED, ADDED or DELETED (Docker's numbers)


@dataclass(frozen=True)
class WritableLayer:
    """A container's upper directory, what in it is only mount points, and its image."""

    upper: Path
    stubs: frozenset[str]  # paths relative to `upper` to leave out
    lowers: tuple[Path, ...]  # the image's layer directories, top first


def writable_layer(d: DockerDeps, record: ContainerRecord) -> WritableLayer:
    """The container's writable layer.

    Raises:
        Conflict: the container has no writable layer (it was never created on disk).
    """
    upper = Path(record.bundle) / "upper"
    if not record.bundle or not upper.is_dir():
        raise Conflict(f"container {record.pod_id[:12]} has no writable layer")
    try:
        points = [m["destination"] for m in d.containers.spec(record.id).get("mounts", [])]
    except (OSError, KeyError, TypeError, ValueError):
        points = []
    return WritableLayer(upper, mount_stubs(upper, points),
                         tuple(d.images.layer_dirs(record.image_id)))


def mount_stubs(upper: Path, mountpoints: list[str]) -> frozenset[str]:
    """Relative paths in `upper` that exist only as mount points: empty files or
    directories at a mount's destination, and directories holding nothing else."""
    stubs: set[str] = set()
    for point in sorted(mountpoints, key=len, reverse=True):
        rel = os.path.normpath(point.strip("/"))
        while rel not in ("", ".") and _is_stub(upper, rel, stubs):
            stubs.add(rel)
            rel = os.path.dirname(rel)
    return frozenset(stubs)


def _is_stub(upper: Path, rel: str, stubs: set[str]) -> bool:
    fd = _open_dir(upper, os.path.dirname(rel))
    if fd < 0:
        return False
    try:
        st = os.stat(os.path.basename(rel), dir_fd=fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            return st.st_size == 0
        if not stat.S_ISDIR(st.st_mode):
            return False
        sub = os.open(os.path.basename(rel), _DIR, dir_fd=fd)
        try:
            return not is_opaque(sub) and all(f"{rel}/{n}" in stubs for n in os.listdir(sub))
        finally:
            os.close(sub)
    except OSError:
        return False
    finally:
        os.close(fd)


def changes(layer: WritableLayer) -> list[Change]:
    """The changes in `layer`, parents before children (sorted by path)."""
    out: list[Change] = []
    fd = os.open(layer.upper, _DIR)
    try:
        _walk(layer, fd, "", out)
    finally:
        os.close(fd)
    return sorted(out, key=lambda c: c.path)


def _walk(layer: WritableLayer, dir_fd: int, prefix: str, out: list[Change]) -> bool:
    """Appends the changes below `prefix`; True when there is at least one."""
    found = False
    for name in os.listdir(dir_fd):
        rel = f"{prefix}{name}"
        if rel in layer.stubs or name == OPAQUE:
            continue
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 or name.startswith(WHITEOUT):
            out.append(Change("/" + rel.replace(WHITEOUT, "", 1), DELETED))
            found = True
            continue
        below = _in_image(layer.lowers, rel)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR, dir_fd=dir_fd)
            try:
                children = _walk(layer, sub, rel + "/", out)
                opaque = is_opaque(sub)
            finally:
                os.close(sub)
            if not (below is None or opaque or children or not _same_dir(st, below)):
                continue  # copied up only to hold a mount point or an unchanged child
        out.append(Change("/" + rel, ADDED if below is None else MODIFIED))
        found = True
    return found


def _same_dir(st: os.stat_result, below: os.stat_result) -> bool:
    """A directory copied up only because something below it changed (Docker's test)."""
    return stat.S_ISDIR(below.st_mode) and st.st_mode == below.st_mode and \
        st.st_mtime_ns // 1000 == below.st_mtime_ns // 1000


def _in_image(lowers: tuple[Path, ...], rel: str) -> os.stat_result | None:
    """The entry at `rel` in the topmost layer that has it (None: not in the image)."""
    for lower in lowers:
        fd = _open_dir(lower, os.path.dirname(rel))
        if fd < 0:
            continue
        try:
            st = os.stat(os.path.basename(rel), dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        finally:
            os.close(fd)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout hides the layers below
            return None
        return st
    return None


def _open_dir(root: Path, rel: str) -> int:
    """An fd of the directory `rel` below `root`, each component opened with O_NOFOLLOW;
    -1 when it is not a directory there."""
    try:
        fd = os.open(root, _DIR)
    except OSError:
        return -1
    for part in (p for p in rel.split("/") if p):
        try:
            sub = os.open(part, _DIR, dir_fd=fd)
        except OSError:
            os.close(fd)
            return -1
        os.close(fd)
        fd = sub
    return fd


def diff(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    if c.record is None:
        raise Conflict(f"container {c.id[:12]} has no writable layer")
    found = changes(writable_layer(d, c.record))
    return json_response([{"Path": ch.path, "Kind": ch.kind} for ch in found] or None)


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/containers/{id}/changes", lambda req: diff(d, req))
