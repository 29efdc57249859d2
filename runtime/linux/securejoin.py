"""Resolve a path inside a root directory so that no symlink can lead outside it.

Like Go's filepath-securejoin: ``..`` and symlinks are resolved component by component as if
``root`` were ``/``; an absolute symlink target restarts from ``root``. The result is always
``root`` or below it. ``open_in_root`` then re-checks the opened file through /proc/self/fd so
a rename racing with the resolution is caught too.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.linux import libc


class UnsafePath(OSError):
    """A path resolved inside a root tried to leave it, or loops (an OSError: callers treat it
    as the failed file operation it is)."""

MAX_SYMLINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """Return root joined with unsafe, with every symlink resolved inside root.

    Components that do not exist are appended lexically. Raises UnsafePath after
    MAX_SYMLINKS symlinks (a loop).
    """
    root = os.path.abspath(root)
    done: list[str] = []
    todo = [c for c in unsafe.split("/") if c]
    todo.reverse()
    links = 0
    while todo:
        comp = todo.pop()
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        full = os.path.join(root, *done, comp)
        try:
            st = os.lstat(full)
        except OSError:
            done.append(comp)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise UnsafePath(f"resolving {unsafe!r} in {root}: too many symlinks")
        target = os.readlink(full)
        if target.startswith("/"):
            done = []
        parts = [c for c in target.split("/") if c]
        todo.extend(reversed(parts))
    return os.path.join(root, *done)


def within(root: str, path: str) -> bool:
    """True when path is root or below it (lexically)."""
    root = os.path.abspath(root)
    path = os.path.abspath(path)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _inside(root: str, real: str) -> bool:
    """within(realpath(root), real) for a canonical ``real``; realpath (an lstat per component)
    only when root is not canonical itself (a canonical path lexically below root proves it
    is)."""
    return within(root, real) or within(os.path.realpath(root), real)


def mkdir_all(root: str, unsafe: str, mode: int = 0o755) -> str:
    """Create the directory unsafe inside root (like mkdir -p) and return its safe path.

    Each component is resolved with secure_join before it is created, so a symlink planted
    anywhere along the way cannot redirect the creation outside root.
    """
    fast = _mkdir_all_in_kernel(root, unsafe, mode)
    if fast is not None:
        return fast
    path = root
    parts = [c for c in unsafe.split("/") if c]
    for i in range(len(parts)):
        path = secure_join(root, "/".join(parts[: i + 1]))
        # secure_join resolved every existing component, so what makedirs creates is new
        os.makedirs(path, mode, exist_ok=True)
        if not os.path.isdir(path) or os.path.islink(path):
            raise NotADirectoryError(errno.ENOTDIR, f"{path} is not a directory")
    return path


_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def _mkdir_all_in_kernel(root: str, unsafe: str, mode: int) -> str | None:
    """mkdir_all with openat2(RESOLVE_IN_ROOT): the kernel resolves the existing part as if
    root were ``/`` (one syscall instead of an lstat per component and prefix), then each
    missing component is made and opened without following symlinks. Returns the directory's
    real path, or None whenever the slow path must decide (``..`` in the path, an old kernel,
    a symlink or non-directory in the way: it gives the same result or error as always)."""
    parts = [c for c in unsafe.split("/") if c and c != "."]
    if ".." in parts:
        return None
    try:
        found = _open_longest_prefix(root, parts)
    except OSError:
        return None
    if found is None:
        return None
    fd, existing = found
    try:
        for comp in parts[existing:]:
            try:
                os.mkdir(comp, mode, dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open(comp, _DIR_PATH | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
    if not _inside(root, path):
        raise UnsafePath(f"{unsafe} resolves to {path}, outside the container root {root}")
    return path


def _open_longest_prefix(root: str, parts: list[str]) -> tuple[int, int] | None:
    """(fd, n): the deepest existing directory parts[:n], opened O_PATH inside root."""
    rootfd = os.open(root, _DIR_PATH)
    try:
        for n in range(len(parts), 0, -1):
            try:
                return libc.openat2(rootfd, "/".join(parts[:n]), _DIR_PATH,
                                    libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS), n
            except FileNotFoundError:
                continue
            except OSError:
                return None
        return os.dup(rootfd), 0
    finally:
        os.close(rootfd)


def create_file(root: str, unsafe: str, mode: int = 0o644) -> str:
    """Create an empty file at unsafe inside root (parents as needed); return its safe path."""
    parent, _, name = unsafe.rstrip("/").rpartition("/")
    mkdir_all(root, parent)
    path = secure_join(root, unsafe)
    # the last component may be a symlink to a file in directories that do not exist yet
    mkdir_all(root, os.path.relpath(os.path.dirname(path), root))
    if not os.path.lexists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        os.close(fd)
    return path


def open_in_root(root: str, path: str) -> int:
    """Open path with O_PATH and check, through /proc/self/fd, that it is still inside root.

    Returns the fd (caller closes). Mount on ``f"/proc/self/fd/{fd}"`` so the kernel uses exactly
    the checked inode. Raises UnsafePath when the path escaped root.
    """
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    real = os.readlink(f"/proc/self/fd/{fd}")
    if not _inside(root, real):
        os.close(fd)
        raise UnsafePath(f"{path} resolves to {real}, outside the container root {root}")
    return fd
