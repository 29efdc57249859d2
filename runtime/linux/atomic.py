"""Atomic file replacement: temp file in the same directory, fsync, rename, fsync the directory.

A crash at any instant leaves either the old or the new content, never a torn file, and no
temporary file survives an error. runtime/atomic.py and imagestore/store/atomic.py are the same
file, byte for byte: the two libraries may not import each other, so each carries the copy, and
tests/unit/test_atomic.py runs one contract on both and checks they have not drifted apart.
"""

from __future__ import annotations

import os

StrPath = str | os.PathLike[str]


def write_atomic(path: StrPath, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never part.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` beside ``path``: on the same
    filesystem (rename is atomic only there), unique to the caller (concurrent writers never
    share one), and starting with a dot so directory watchers (``runtime.exits``) skip it.
    ``mode`` is set exactly (the umask does not apply). ``durable`` fsyncs the file before the
    rename and the directory after it, so the new content also survives a power loss;
    ``durable=False`` is for volatile directories (a tmpfs run root), where the rename alone
    is enough.

    Raises:
        OSError: from open/write/fsync/rename; the temporary file is removed first and the old
            content of ``path`` stays as it was (a failing directory fsync is raised after the
            rename: the new content is complete, its durability unknown).
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # the directory itself went away: the original error is the one to raise
        raise
    if durable:
        fsync_dir(directory or ".")


def fsync_dir(path: StrPath) -> None:
    """fsync a directory, so that renames and creations in it survive a crash.

    Raises:
        OSError: the directory cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
