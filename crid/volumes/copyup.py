"""Docker's copy-up: a volume mounted over a directory of the image starts with that
directory's content (files, owners, modes, xattrs, links), copied when the volume is empty."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from crid.errors import Internal
from runtime.linux.securejoin import UnsafePath, secure_join

COPY_TIMEOUT = 600.0


def copy_up(rootfs: Path, target: str, data: Path) -> bool:
    """Copies `target` of the container's (not yet started) root into the empty volume
    directory `data`; the path is resolved inside the root, so an image's symlink cannot make
    it read the host's files. Returns whether anything was copied (nothing when the volume is
    not empty, or the image has no directory there).

    Raises:
        Internal: the copy failed (the volume is emptied again, so the next use retries).
    """
    if any(data.iterdir()):
        return False
    try:
        src = secure_join(str(rootfs), target)
        st = os.lstat(src)
    except (UnsafePath, FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    # coreutils' cp -a keeps what Docker's copy keeps (owners, modes, times, xattrs,
    # hard links, devices, sparse files) and never follows the image's symlinks.
    try:
        proc = subprocess.run(["cp", "-a", "--no-dereference", "--", f"{src}/.", str(data)],
                              capture_output=True, text=True, timeout=COPY_TIMEOUT, check=False)
        error = proc.stderr.strip() if proc.returncode != 0 else ""
    except (OSError, subprocess.TimeoutExpired) as e:
        error = str(e)
    if error:
        _empty(data)
        raise Internal(f"copying {target} of the image into volume {data.parent.name}: "
                       f"{error[:500]}")
    return True


def _empty(data: Path) -> None:
    for child in data.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
