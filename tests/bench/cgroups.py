"""Removal of the cgroup directories bench pods were placed under (`CGROUP_PARENT`)."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "/crt-rig-bench"  # pass as LinuxPodSandboxConfig.cgroup_parent in pod benchmarks


def cgroup_dirs(parent: str = CGROUP_PARENT) -> list[Path]:
    """`<hierarchy>/<parent>` in every mounted hierarchy (v1 controllers, unified, v2)."""
    name = parent.strip("/")
    found = [CGROUP_ROOT / name] if (CGROUP_ROOT / name).is_dir() else []
    if CGROUP_ROOT.is_dir():
        found += [h / name for h in CGROUP_ROOT.iterdir() if (h / name).is_dir()]
    return found


def remove_cgroup_dirs(parent: str = CGROUP_PARENT) -> list[str]:
    """rmdir every (empty) cgroup under `parent`, deepest first; returns what could not go."""
    left = []
    for top in cgroup_dirs(parent):
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError as err:
                left.append(f"{dirpath}: {err.strerror}")
    return left
