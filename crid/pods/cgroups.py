"""The pod's cgroup: `<cgroup_parent>/crid-<id>` in every hierarchy, with its resources.

`PodCgroups` is the seam the manager uses. `CgroupfsPodCgroups` is a small cgroupfs
implementation (v1 hierarchies and a v2 unified tree) for the pod level only; container cgroups
belong to `runtime.cgroups`, which should replace it once its CgroupManager lands.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Protocol

from crid.errors import Internal, InvalidArgument
from crid.pods.model import Resources

DEFAULT_PARENT = "/crid"
_SKIP = {"name=systemd", "systemd", "rdma", "misc", "net_cls", "net_prio", "perf_event",
         "hugetlb"}


class CgroupError(Internal):
    """A pod cgroup could not be created, written or removed."""


class PodCgroups(Protocol):
    def create(self, parent: str, name: str, res: Resources | None) -> str:
        """Creates <parent>/<name> and applies res; returns the relative path."""
        ...

    def update(self, path: str, res: Resources) -> None: ...

    def add_process(self, path: str, pid: int) -> None: ...

    def destroy(self, path: str) -> None:
        """Removes the cgroup (and nothing above it); an absent one is fine."""
        ...


def _hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[Path, set[str]]]:
    found: dict[Path, set[str]] = {}
    for line in Path(mountinfo).read_text().splitlines():
        left, right = line.split(" - ", 1)
        fstype, _, opts = right.split()[:3]
        mnt = Path(left.split()[4])
        if fstype == "cgroup":
            ctrls = {o for o in opts.split(",") if o not in ("rw", "ro") and "=" not in o}
            ctrls |= {o for o in opts.split(",") if o.startswith("name=")}
            if ctrls and not ctrls <= _SKIP:
                found.setdefault(mnt, ctrls)
        elif fstype == "cgroup2":
            ctl = mnt / "cgroup.controllers"
            if ctl.exists() and ctl.read_text().split():
                found.setdefault(mnt, {"unified"})
    if any(c != {"unified"} for c in found.values()):  # hybrid: the v1 hierarchies rule
        found = {m: c for m, c in found.items() if c != {"unified"}}
    return sorted(found.items())


class CgroupfsPodCgroups:
    """Pod cgroups written straight to cgroupfs."""

    def __init__(self) -> None:
        self._roots = _hierarchies()

    def create(self, parent: str, name: str, res: Resources | None) -> str:
        rel = f"{(parent or DEFAULT_PARENT).rstrip('/')}/{name}".lstrip("/")
        for root, ctrls in self._roots:
            try:
                self._mkdirs(root, rel, "cpuset" in ctrls)
            except OSError as e:
                self.destroy(rel)
                raise CgroupError(f"creating pod cgroup {rel} under {root}: {e}") from e
        if res is not None:
            try:
                self.update(rel, res)
            except BaseException:
                self.destroy(rel)
                raise
        return rel

    def _mkdirs(self, root: Path, rel: str, cpuset: bool) -> None:
        path = root
        for part in rel.split("/"):
            parent, path = path, path / part
            try:
                path.mkdir()
            except FileExistsError:
                pass  # made earlier, or by a concurrent RunPodSandbox under the same parent
            if cpuset:  # a v1 cpuset group takes no task until cpus and mems are set
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not (path / f).read_text().strip():
                        (path / f).write_text((parent / f).read_text())

    def update(self, path: str, res: Resources) -> None:
        for root, ctrls in self._roots:
            for fname, value in _writes(res, ctrls):
                try:
                    (root / path / fname).write_text(value)
                except OSError as e:
                    if e.errno == errno.EINVAL:
                        raise InvalidArgument(f"pod resources: {fname}={value} refused by "
                                              f"the kernel") from e
                    raise CgroupError(f"writing {fname}={value} for pod cgroup {path}: {e}") \
                        from e

    def add_process(self, path: str, pid: int) -> None:
        for root, _ in self._roots:
            target = root / path / "cgroup.procs"
            try:
                target.write_text(str(pid))
            except OSError as e:
                raise CgroupError(f"moving pid {pid} into {target}: {e}") from e

    def destroy(self, path: str) -> None:
        for root, _ in self._roots:
            target = root / path
            for _ in range(500):  # processes just killed may still be leaving the group
                try:
                    target.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise CgroupError(f"removing pod cgroup {target}: {e}") from e
                    time.sleep(0.01)
            else:
                raise CgroupError(f"removing pod cgroup {target}: still busy")

    def exists(self, path: str) -> bool:
        return any((root / path).is_dir() for root, _ in self._roots)


def _writes(res: Resources, ctrls: set[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if "unified" in ctrls:
        if res.memory_limit_in_bytes:
            out.append(("memory.max", str(res.memory_limit_in_bytes)))
        if res.cpu_quota or res.cpu_period:
            quota = str(res.cpu_quota) if res.cpu_quota > 0 else "max"
            out.append(("cpu.max", f"{quota} {res.cpu_period or 100000}"))
        if res.cpu_shares:  # the kubelet's shares -> weight conversion
            out.append(("cpu.weight", str(1 + ((res.cpu_shares - 2) * 9999) // 262142)))
        return out
    if "memory" in ctrls and res.memory_limit_in_bytes:
        out.append(("memory.limit_in_bytes", str(res.memory_limit_in_bytes)))
    if "cpu" in ctrls:
        if res.cpu_shares:
            out.append(("cpu.shares", str(res.cpu_shares)))
        if res.cpu_period:
            out.append(("cpu.cfs_period_us", str(res.cpu_period)))
        if res.cpu_quota:
            out.append(("cpu.cfs_quota_us", str(res.cpu_quota)))
    if "cpuset" in ctrls:
        out += [(f, v) for f, v in (("cpuset.cpus", res.cpuset_cpus),
                                    ("cpuset.mems", res.cpuset_mems)) if v]
    return out


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
        memory_limit_in_bytes=(resources.memory_limit_in_bytes + overhead.memory_limit_in_bytes
                               if resources.memory_limit_in_bytes else 0),
        cpuset_cpus=resources.cpuset_cpus, cpuset_mems=resources.cpuset_mems)


