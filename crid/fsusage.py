"""Disk usage of a directory tree, counted as `du` does: allocated bytes and distinct inodes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    inodes_used: int


def dir_usage(root: Path) -> Usage:
    """Walks root without following symlinks or crossing into other filesystems."""
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return Usage(0, 0)
    seen = {(top.st_dev, top.st_ino)}
    used = top.st_blocks * 512
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # removed or unreadable while walking
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_dev != top.st_dev or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return Usage(used, len(seen))
