"""The pod's cgroup: `<cgroup_parent>/crid-<id>` in every hierarchy (with the systemd driver, a
slice of the pod's own inside the cgroup_parent slice), with the pod's limits.

`PodCgroups` is the seam the pod lifecycle uses; `RuntimePodCgroups` implements it with the
runtime's cgroup managers (`runtime.cgroups`), the code that also makes the containers' cgroups
below it: the same hierarchies, the same resource writes, the same bottom-up removal.
"""

from __future__ import annotations

import errno
import os
import re
import select
import time
from typing import Protocol

from crid.errors import Internal, InvalidArgument
from crid.resources import Resources
from runtime.api import CgroupError as RuntimeCgroupError
from runtime.api import (
    CgroupLimits,
    CgroupManager,
    CgroupPath,
    Cpu,
    Memory,
    Mount,
    SpecError,
    expand_slice,
    open_cgroup,
    read_mounts,
)

CGROUPFS, SYSTEMD = "cgroupfs", "systemd"
DEFAULT_PARENT = "/crid"
DEFAULT_SLICE = "system.slice"  # the systemd driver's parent for an empty cgroup_parent
UNIT_NAME_MAX = 255  # systemd's longest unit name
# Slice names as systemd accepts them (no template "@", no ":" that would split an OCI
# "slice:prefix:name" cgroupsPath, no escapes).
_SLICE = re.compile(r"^[A-Za-z0-9_.-]+\.slice$")
# A just-killed process keeps its cgroup busy until it has exited.
REMOVE_WAIT = 5.0


class CgroupError(Internal):
    """A pod cgroup could not be created, written or removed."""


class PodCgroups(Protocol):
    def create(self, path: str, res: Resources | None) -> None:
        """Creates the cgroup at `path` (what `pod_cgroup_path` gives) and applies res."""
        ...

    def update(self, path: str, res: Resources) -> None: ...

    def add_process(self, path: str, pid: int) -> None: ...

    def destroy(self, path: str) -> None:
        """Removes the cgroup and any sub-cgroups left in it (nothing above it); an absent
        one is fine."""
        ...


def pod_cgroup_path(parent: str, name: str, driver: str = CGROUPFS) -> str:
    """The pod cgroup's path below every hierarchy's root, without a leading "/" (the form
    `PodSandbox.cgroup` records).

    cgroupfs driver: `<parent>/<name>`. `parent` is a cgroupfs path (`/kubepods/burstable/pod<uid>`;
    "" means /crid) or a slice name, nested the way systemd nests slices
    (`kubepods-burstable-pod<uid>.slice` -> `/kubepods.slice/kubepods-burstable.slice/...`).

    systemd driver: the pod gets a slice of its own inside `parent` (which must be a slice name;
    "" means system.slice), named as systemd names a child slice: `crid-<id>` under
    `kubepods-burstable-pod<uid>.slice` is `kubepods-burstable-pod<uid>-crid_<id>.slice`, at
    `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/<that>`. Its
    containers are `<that>:crid:<cid>` scopes inside it (see `containers.inputs.cgroups_path`).

    Raises:
        InvalidArgument: an invalid slice name, or (systemd) a parent that is no slice name.
    """
    if driver == SYSTEMD:
        return _expand(pod_slice(parent, name)).lstrip("/")
    parent = parent or DEFAULT_PARENT
    if parent.endswith(".slice") and "/" not in parent:
        parent = _expand(parent)
    return f"{parent.strip('/')}/{name}".lstrip("/")


def pod_slice(parent: str, name: str) -> str:
    """The systemd driver's slice for the pod `name` inside the slice `parent`.

    Raises:
        InvalidArgument: `parent` is no valid slice name, or the result is too long a unit name.
    """
    parent = parent or DEFAULT_SLICE
    if not _SLICE.match(parent):
        raise InvalidArgument(f"cgroup_parent {parent[:200]!r}: with the systemd cgroup driver "
                              "it must be a slice name such as kubepods-burstable-pod<uid>.slice")
    _expand(parent)
    base = parent[: -len(".slice")]
    unit = f"{base}-{name.replace('-', '_')}.slice" if base != "-" else \
        f"{name.replace('-', '_')}.slice"
    if len(unit) > UNIT_NAME_MAX:
        raise InvalidArgument(f"cgroup_parent {parent[:200]!r}: the pod's slice name would be "
                              f"{len(unit)} characters, over systemd's {UNIT_NAME_MAX}")
    return unit


def _expand(slice_name: str) -> str:
    try:
        return expand_slice(slice_name)
    except SpecError as e:
        raise InvalidArgument(f"cgroup_parent {slice_name[:200]!r}: {e}") from e


def cgroup_limits(res: Resources) -> CgroupLimits:
    """The knobs of `res` a pod cgroup honours (CPU, cpuset and memory), as the runtime's
    cgroup limits; unset values stay None, so they leave the cgroup as it is."""
    cpu = Cpu(shares=res.cpu_shares or None, quota=res.cpu_quota or None,
              period=res.cpu_period or None, cpus=res.cpuset_cpus or None,
              mems=res.cpuset_mems or None)
    return CgroupLimits(cpu=cpu if cpu != Cpu() else None,
                        memory=Memory(limit=res.memory_limit) if res.memory_limit else None)


class RuntimePodCgroups:
    """Pod cgroups through `runtime.cgroups` (cgroup v1, hybrid and v2 hosts)."""

    def __init__(self, mounts: list[Mount] | None = None) -> None:
        """`mounts`: the cgroup filesystems to work in (default: this host's, read now).

        Raises:
            CgroupError: /proc/self/mountinfo cannot be read.
        """
        try:
            self._mounts = read_mounts() if mounts is None else mounts
        except RuntimeCgroupError as e:
            raise CgroupError(f"finding the cgroup hierarchies: {e}") from e

    def _open(self, path: str) -> CgroupManager:
        # Absolute below each hierarchy's root: the daemon's own cgroup does not matter.
        try:
            return open_cgroup(CgroupPath("/" + path), self._mounts, own={})
        except RuntimeCgroupError as e:
            raise CgroupError(f"pod cgroup {path}: {e}") from e

    def create(self, path: str, res: Resources | None) -> None:
        """mkdir in every hierarchy, safe against concurrent creates under the same new
        parent (they share its directories), then the limits. All or nothing.

        Raises:
            InvalidArgument: limits the kernel refuses. CgroupError: the rest.
        """
        cg = self._open(path)
        try:
            cg.create()
            if res is not None:
                cg.set(cgroup_limits(res))
        except RuntimeCgroupError as e:
            self.destroy(path)
            raise _mapped(f"creating pod cgroup {path}", e) from e
        except BaseException:
            self.destroy(path)
            raise

    def update(self, path: str, res: Resources) -> None:
        """Raises InvalidArgument (limits the kernel refuses) or CgroupError."""
        try:
            self._open(path).set(cgroup_limits(res))
        except RuntimeCgroupError as e:
            raise _mapped(f"setting the limits of pod cgroup {path}", e) from e

    def add_process(self, path: str, pid: int) -> None:
        """Raises CgroupError."""
        try:
            self._open(path).apply(pid)
        except RuntimeCgroupError as e:
            raise CgroupError(f"moving pid {pid} into pod cgroup {path}: {e}") from e

    def destroy(self, path: str) -> None:
        """Removes the cgroup bottom-up in every hierarchy (with whatever empty sub-cgroups
        containers left), waiting up to REMOVE_WAIT while it is busy.

        Raises:
            CgroupError: still busy after REMOVE_WAIT, or the kernel refused.
        """
        cg = self._open(path)
        deadline = time.monotonic() + REMOVE_WAIT
        while True:
            try:
                cg.destroy()
                return
            except RuntimeCgroupError as e:
                left = deadline - time.monotonic()
                if _errno(e) != errno.EBUSY or left <= 0 or not _await_exits(cg.pids(), left):
                    raise CgroupError(f"removing pod cgroup {path}: {e}") from e


def _await_exits(pids: list[int], timeout: float) -> bool:
    """Wait, woken by their pidfds, until every process in ``pids`` has exited (a process
    leaves its cgroup as it exits). False on timeout, or when none was running any more:
    then no exit can free the cgroup, and the caller's wait is over."""
    deadline = time.monotonic() + timeout
    waited = False
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if select.select([fd], [], [], 0)[0]:
                continue  # exited already
            waited = True
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return False
        finally:
            os.close(fd)
    return waited


def _errno(e: RuntimeCgroupError) -> int | None:
    cause = e.__cause__
    return cause.errno if isinstance(cause, OSError) else None


def _mapped(what: str, e: RuntimeCgroupError) -> Exception:
    if _errno(e) == errno.EINVAL:
        return InvalidArgument(f"pod resources: {e} (refused by the kernel)")
    return CgroupError(f"{what}: {e}")


def combine(overhead: Resources | None, resources: Resources | None) -> Resources | None:
    """The pod cgroup's limits: the containers' sum plus the sandbox overhead."""
    if overhead is None or resources is None:
        return resources or overhead
    period = resources.cpu_period or overhead.cpu_period
    return Resources(
        cpu_period=period,
        cpu_quota=(resources.cpu_quota + overhead.cpu_quota
                   if resources.cpu_quota > 0 and overhead.cpu_quota >= 0 else
                   resources.cpu_quota),
        cpu_shares=resources.cpu_shares + overhead.cpu_shares,
        memory_limit=(resources.memory_limit + overhead.memory_limit
                      if resources.memory_limit else 0),
        cpuset_cpus=resources.cpuset_cpus, cpuset_mems=resources.cpuset_mems)
