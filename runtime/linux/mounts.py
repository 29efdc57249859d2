"""Detaching every mount stacked at a path."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

from runtime.linux import libc


def unmount_all(path: Path, is_mounted: Callable[[Path], bool],
                umount2: Callable[[str, int], None] = libc.umount2) -> None:
    """Lazily detaches mounts at `path` until `is_mounted(path)` is false (mounts stack: one
    umount uncovers the next). "Not mounted" or "no such path" from the kernel ends it too.

    Raises:
        OSError: the kernel refused an unmount for another reason.
    """
    while is_mounted(path):
        try:
            umount2(str(path), libc.MNT_DETACH)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return
            raise
