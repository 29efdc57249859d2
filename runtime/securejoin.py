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

from runtime.errors import SecurityError

MAX_SYMLINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """Return root joined with unsafe, with every symlink resolved inside root.

    Components that do not exist are appended lexically. Raises SecurityError after
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
            raise SecurityError(f"resolving {unsafe!r} in {root}: too many symlinks")
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


def mkdir_all(root: str, unsafe: str, mode: int = 0o755) -> str:
    """Create the directory unsafe inside root (like mkdir -p) and return its safe path.

    Each component is resolved with secure_join before it is created, so a symlink planted
    anywhere along the way cannot redirect the creation outside root.
    """
    path = root
    parts = [c for c in unsafe.split("/") if c]
    for i in range(len(parts)):
        path = secure_join(root, "/".join(parts[: i + 1]))
        # secure_join resolved every existing component, so what makedirs creates is new
        os.makedirs(path, mode, exist_ok=True)
        if not os.path.isdir(path) or os.path.islink(path):
            raise NotADirectoryError(errno.ENOTDIR, f"{path} is not a directory")
    return path


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
    the checked inode. Raises SecurityError when the path escaped root.
    """
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    real = os.readlink(f"/proc/self/fd/{fd}")
    if not within(os.path.realpath(root), real):
        os.close(fd)
        raise SecurityError(f"{path} resolves to {real}, outside the container root {root}")
    return fd
