"""Atomic file replacement: temp file in the same directory, fsync, rename.

A crash at any instant leaves either the old or the new content, never a torn file.
"""

from __future__ import annotations

import os


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically.

    The temporary name starts with a dot so directory watchers (``runtime.exits``) skip it.
    Raises OSError from open/write/fsync/rename.
    """
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
