"""The slice of ``runtime.cgroups`` the lifecycle needs, as a Protocol, and where to get one.

Kept separate so the lifecycle and monitor depend on five methods, not on cgroup internals.
"""

from __future__ import annotations

from typing import Any, Protocol

from runtime.spec.model import Spec


class Cgroups(Protocol):
    """One container's cgroup (v1 or v2)."""

    def create(self) -> None: ...
    def apply(self, pid: int) -> None: ...
    def set(self, resources: Any) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def pids(self) -> list[int]: ...
    def destroy(self) -> None: ...
    def oom_kill_count(self) -> int: ...


def open_cgroups(spec: Spec, container_id: str) -> Cgroups | None:
    """The cgroup manager for a container, or None when cgroup support is not available."""
    try:
        from runtime.cgroups import CgroupManager  # noqa: F401
    except ImportError:
        return None
    return _open_manager(spec, container_id)


def _open_manager(spec: Spec, container_id: str) -> Cgroups:
    from runtime.cgroups import CgroupManager, Resources

    manager = CgroupManager(spec.linux.cgroups_path or f"/crid-runtime/{container_id}")
    if spec.linux.resources is not None:
        manager.resources = Resources.from_oci(spec.linux.resources)
    return manager
