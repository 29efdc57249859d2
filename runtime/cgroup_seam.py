"""Opening a container's cgroup from its spec (``linux.cgroupsPath``, default: the id)."""

from __future__ import annotations

import os

from runtime.cgroups import (
    CgroupError,
    CgroupManager,
    FreezerState,
    Mount,
    cgroup_paths_of,
    open_cgroup,
    parse_cgroups_path,
    read_mounts,
)
from runtime.init.mounts import CgroupHierarchy
from runtime.spec.model import Spec

Cgroups = CgroupManager


def open_cgroups(spec: Spec, container_id: str, view: dict | None = None) -> CgroupManager:
    """The cgroup manager for a container (nothing is created). ``view``: the host's cgroup
    mounts and the caller's own cgroups as ``host_view`` gave them (read from /proc when
    None). Raises SpecError/CgroupError."""
    path = parse_cgroups_path(spec.linux.cgroups_path, container_id)
    if view is None:
        return open_cgroup(path)
    try:
        mounts = [Mount(str(mp), str(root), int(version), frozenset(map(str, controllers)))
                  for mp, root, version, controllers in view["mounts"]]
        own = {str(k): str(v) for k, v in view["own"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CgroupError(f"a malformed view of the host's cgroups: {e!r}") from e
    return open_cgroup(path, mounts, own)


def host_view() -> dict:
    """The cgroup mounts of this host and this process's own cgroups (the base of relative
    cgroup paths), JSON-serialisable: read once by the Runtime and handed to the creator, so
    both resolve the container's cgroups alike and the creator reads no /proc files for it.
    Raises CgroupError."""
    return {"mounts": [[m.mountpoint, m.root, m.version, sorted(m.controllers)]
                       for m in read_mounts()],
            "own": cgroup_paths_of("self")}


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
