"""Opening a container's cgroup from its spec (``linux.cgroupsPath``, default: the id)."""

from __future__ import annotations

import os

from runtime.cgroups import CgroupManager, FreezerState, open_cgroup, parse_cgroups_path
from runtime.init.mounts import CgroupHierarchy
from runtime.spec.model import Spec

Cgroups = CgroupManager


def open_cgroups(spec: Spec, container_id: str) -> CgroupManager:
    """The cgroup manager for a container (nothing is created). Raises SpecError/CgroupError."""
    return open_cgroup(parse_cgroups_path(spec.linux.cgroups_path, container_id))


def is_frozen(cg: CgroupManager) -> bool:
    """True when the container's freezer reports FROZEN (False when the cgroup is gone)."""
    try:
        return cg.exists() and cg.state() is FreezerState.FROZEN
    except OSError:
        return False


def mount_hierarchies(cg: CgroupManager) -> tuple[CgroupHierarchy, ...]:
    """The container's cgroups as its cgroup mount binds them: named like the init's own
    ``host_cgroups()`` would (the mount's basename; "" for cgroup2), before it has joined them."""
    return tuple(CgroupHierarchy("" if version == 2 else os.path.basename(mountpoint), d)
                 for mountpoint, version, d in cg.hierarchies())
