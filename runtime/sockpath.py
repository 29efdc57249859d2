"""Unix socket paths longer than sun_path (108 bytes), reached without chdir.

A long path is reached through ``/proc/self/fd/<dirfd>/<name>``: the caller may be
multi-threaded (crid), where chdir would move every thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

SUN_PATH_MAX = 107


@contextmanager
def short_path(path: str) -> Iterator[str]:
    """Yields a path to the same socket that fits in sun_path."""
    if len(path.encode()) <= SUN_PATH_MAX:
        yield path
        return
    directory, name = os.path.split(path)
    fd = os.open(directory or ".", os.O_PATH | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)
