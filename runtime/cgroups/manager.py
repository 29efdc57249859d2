"""The ``CgroupManager`` Protocol and ``open_cgroup``, which picks v1 or v2 for this host."""

from __future__ import annotations

from typing import Protocol

from runtime.cgroups.errors import CgroupError
from runtime.cgroups.freezer import FreezerState
from runtime.cgroups.paths import (
    CgroupPath,
    Mount,
    cgroup_paths_of,
    parse_cgroups_path,
    read_mounts,
)
from runtime.cgroups.resources import Resources
from runtime.cgroups.stats import CgroupStats
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager

UNIFIED_MOUNTPOINT = "/sys/fs/cgroup"


class CgroupManager(Protocol):
    """One container's cgroup, in every hierarchy of the host.

    Every method raises ``CgroupError`` (naming the file and errno) when the kernel refuses;
    ``set`` also raises it for a setting the host cannot honour.
    """

    path: CgroupPath
    version: int

    def create(self) -> None:
        """mkdir the cgroup (and missing parents) in every hierarchy; idempotent."""

    def apply(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""

    def set(self, resources: Resources) -> None:
        """Apply the limits in ``resources``; fields left None are not touched."""

    def freeze(self) -> None:
        """Freeze every process in the cgroup; returns once the kernel reports FROZEN."""

    def thaw(self) -> None: ...

    def state(self) -> FreezerState: ...

    def kill(self, sig: int = 9) -> None:
        """Signal every process in the cgroup and its sub-cgroups (cgroup.kill for SIGKILL
        where the kernel has it; otherwise frozen, signalled one by one, thawed). Returns
        without waiting for them to exit."""

    def pids(self) -> list[int]:
        """Every process in the cgroup and its sub-cgroups, sorted."""

    def stats(self) -> CgroupStats: ...

    def oom_kill_count(self) -> int:
        """Processes the OOM killer killed in this cgroup (memory.oom_control / memory.events)."""

    def oom_counter(self) -> tuple[str, str] | None:
        """(directory, keyed file) whose ``oom_kill`` is ``oom_kill_count``, for a reader
        without the manager; None without a memory controller."""

    def exists(self) -> bool: ...

    def destroy(self) -> None:
        """rmdir the cgroup bottom-up in every hierarchy (retrying briefly while busy); kills
        nothing. A cgroup already gone is not an error."""

    def dirs(self) -> dict[str, str]:
        """{controller: directory}; ``""`` is the cgroup2 directory."""

    def hierarchies(self) -> list[tuple[str, int, str]]:
        """(mountpoint, cgroup version, directory) of each hierarchy, once per mount."""


def detect_version(mounts: list[Mount]) -> int:
    """2 when a cgroup2 is mounted at /sys/fs/cgroup (a unified host), 1 when v1 controllers
    are mounted (pure v1 or hybrid with an empty cgroup2 at /sys/fs/cgroup/unified).

    Raises:
        CgroupError: no cgroup filesystem is mounted.
    """
    if any(m.version == 2 and m.mountpoint == UNIFIED_MOUNTPOINT for m in mounts):
        return 2
    if any(m.version == 1 and (m.controllers - {"name=systemd"}) for m in mounts):
        return 1
    if any(m.version == 2 for m in mounts):
        return 2
    raise CgroupError("no cgroup filesystem is mounted (see /proc/self/mountinfo)")


def open_cgroup(path: CgroupPath, mounts: list[Mount] | None = None,
                own: dict[str, str] | None = None) -> CgroupManager:
    """The manager of ``path`` for this host's cgroup version (nothing is created yet).

    ``mounts`` and ``own`` (this process's cgroups, the base of relative paths) default to
    what /proc says.

    Raises:
        CgroupError: no usable cgroup hierarchy.
    """
    mounts = read_mounts() if mounts is None else mounts
    own = cgroup_paths_of("self") if own is None else own
    if detect_version(mounts) == 1:
        unified = [m for m in mounts if m.version == 2][:1]
        return V1Manager(path, [m for m in mounts if m.version == 1] + unified, own)
    unified = [m for m in mounts if m.version == 2]
    mount = next((m for m in unified if m.mountpoint == UNIFIED_MOUNTPOINT), unified[0])
    return V2Manager(path, mount, own.get("", "/"))


def open_container_cgroup(cgroups_path: str | None, container_id: str) -> CgroupManager:
    """``open_cgroup(parse_cgroups_path(cgroups_path, container_id))``: the manager for an OCI
    ``linux.cgroupsPath`` (nothing is created until ``create()``).

    Raises:
        SpecError: an invalid cgroupsPath (naming linux.cgroupsPath).
        CgroupError: no usable cgroup hierarchy.
    """
    return open_cgroup(parse_cgroups_path(cgroups_path, container_id))
