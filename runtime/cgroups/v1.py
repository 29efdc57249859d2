"""cgroup v1: one directory per mounted hierarchy (co-mounted controllers share one), plus the
cgroup2 hierarchy of a hybrid host, with no controllers but its own process membership."""

from __future__ import annotations

import os
import signal

from runtime.cgroups import files
from runtime.cgroups.convert import Write, v1_writes
from runtime.cgroups.errors import CgroupError
from runtime.cgroups.freezer import FreezerState, signal_frozen, wait_frozen
from runtime.cgroups.paths import CgroupPath, Mount, dir_in_mount
from runtime.cgroups.resources import DeviceRule, Resources
from runtime.cgroups.stats import CgroupStats, v1_stats

# Controllers runc skips silently when their hierarchy is not mounted (kubelet sends hugepage
# limits for every page size; a host without hugetlb/net_cls has nothing to limit).
OPTIONAL = {"hugetlb", "net_cls", "net_prio"}


HUGEPAGES = "/sys/kernel/mm/hugepages"


def host_page_sizes() -> set[str]:
    """This kernel's huge page sizes, spelt as the hugetlb files are ("2MB", "1GB", "64KB")."""
    try:
        names = os.listdir(HUGEPAGES)
    except FileNotFoundError:
        return set()
    out = set()
    for n in names:
        if n.startswith("hugepages-") and n.endswith("kB"):
            size, unit = int(n[len("hugepages-"):-2]), 0
            while size >= 1024 and size % 1024 == 0 and unit < 4:
                size, unit = size // 1024, unit + 1
            out.add(f"{size}{('KB', 'MB', 'GB', 'TB', 'PB')[unit]}")
    return out


def _check_page_sizes(resources: Resources) -> None:
    """Without a hugetlb hierarchy the limits are skipped, but a page size this kernel does not
    have stays an error, as it is where hugetlb is mounted (no such limit file)."""
    if not resources.hugepage_limits:
        return
    sizes = host_page_sizes()
    for h in resources.hugepage_limits:
        if h.page_size not in sizes:
            raise CgroupError(f"linux.resources.hugepageLimits: this host has no {h.page_size} "
                              f"huge pages (it has {', '.join(sorted(sizes)) or 'none'})")


class V1Manager:
    """``CgroupManager`` for cgroup v1 hierarchies (see ``manager.CgroupManager``)."""

    version = 1

    def __init__(self, path: CgroupPath, mounts: list[Mount], own: dict[str, str]) -> None:
        """``mounts``: the v1 mounts (and a hybrid host's cgroup2 mount); ``own``: this process's
        cgroups (base of relative paths).

        Raises:
            CgroupError: a hierarchy's path cannot be resolved.
        """
        self.path = path
        self._dirs: dict[str, str] = {}
        self._mounts: dict[str, Mount] = {}
        for m in mounts:
            # Hybrid host: join the cgroup2 hierarchy too, under the key "" (as runc does), so
            # the container's unified path is its own (cgroup namespace, cgroup mount, exec).
            for c in m.controllers if m.version == 1 else [""]:
                if c in self._dirs:
                    continue  # the same hierarchy mounted twice: first mount wins
                base = "/" if path.absolute else own.get(c, "/")
                self._dirs[c] = dir_in_mount(m, os.path.join(base, path.path.lstrip("/")))
                self._mounts[c] = m

    def dirs(self) -> dict[str, str]:
        return dict(self._dirs)

    def hierarchies(self) -> list[tuple[str, int, str]]:
        seen: dict[str, tuple[str, int, str]] = {}
        for c, d in self._dirs.items():
            m = self._mounts[c]
            seen.setdefault(m.mountpoint, (m.mountpoint, m.version, d))
        return list(seen.values())

    def _unique_dirs(self) -> list[str]:
        return sorted(set(self._dirs.values()))

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._unique_dirs())

    def create(self) -> None:
        for d in self._unique_dirs():
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"creating cgroup {d}: {e.strerror}") from e
        if "cpuset" in self._dirs:
            self._inherit_cpuset(self._mounts["cpuset"].mountpoint, self._dirs["cpuset"])

    @staticmethod
    def _inherit_cpuset(top: str, target: str) -> None:
        # A new v1 cpuset has empty cpus/mems and refuses tasks until they are set: copy them
        # down from the nearest ancestor, level by level (runc's ensureParent).
        rel = os.path.relpath(target, top)
        parent = top
        for part in [] if rel == "." else rel.split("/"):
            child = os.path.join(parent, part)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if files.read(child, name) == "":
                    files.write(child, name, files.read(parent, name))
            parent = child

    def apply(self, pid: int) -> None:
        for d in self._unique_dirs():
            files.write(d, "cgroup.procs", pid)

    def set(self, resources: Resources) -> None:
        memory = self._dirs.get("memory")
        if resources.memory and resources.memory.check_before_update and memory:
            _check_usage(memory, resources.memory.limit)
        current = files.read_int(memory, "memory.limit_in_bytes", 0) if memory else 0
        weight = None
        if "blkio" in self._dirs:
            weight = next((n for n in ("blkio.weight", "blkio.bfq.weight")
                           if files.exists(self._dirs["blkio"], n)), None)
        memsw = memory is not None and files.exists(memory, "memory.memsw.limit_in_bytes")
        if "hugetlb" not in self._dirs:
            _check_page_sizes(resources)
        writes = v1_writes(resources, current or 0, memsw, weight)
        for w in writes:
            self._write(w)
        if resources.devices:
            self._set_devices(resources.devices)

    def _write(self, w: Write) -> None:
        d = self._dirs.get(w.controller)
        if d is None:
            if w.controller in OPTIONAL:
                return
            raise CgroupError(f"{w.field}: the {w.controller} cgroup controller is not mounted")
        if w.optional and not files.exists(d, w.file):
            return
        files.write(d, w.file, w.value, w.field)

    def _set_devices(self, rules: tuple[DeviceRule, ...]) -> None:
        d = self._dirs.get("devices")
        if d is None:
            raise CgroupError("linux.resources.devices: the devices cgroup is not mounted")
        for rule in rules:
            files.write(d, "devices.allow" if rule.allow else "devices.deny", rule.v1_line(),
                        "linux.resources.devices")

    def freeze(self) -> None:
        d = self._freezer()
        files.write(d, "freezer.state", "FROZEN")
        try:
            wait_frozen(self.state, lambda: files.write(d, "freezer.state", "FROZEN"), d)
        except CgroupError:
            files.write(d, "freezer.state", "THAWED")
            raise

    def thaw(self) -> None:
        files.write(self._freezer(), "freezer.state", "THAWED")

    def state(self) -> FreezerState:
        return FreezerState(files.read(self._freezer(), "freezer.state"))

    def _freezer(self) -> str:
        if "freezer" not in self._dirs:
            raise CgroupError("the freezer cgroup controller is not mounted")
        return self._dirs["freezer"]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        unified = self._dirs.get("")
        if sig == signal.SIGKILL and unified and files.exists(unified, "cgroup.kill"):
            files.write(unified, "cgroup.kill", "1")  # hybrid host: the kernel does it all
            return
        signal_frozen(self.freeze, self.thaw, self.pids, sig)

    def pids(self) -> list[int]:
        d = self._dirs.get("pids") or self._dirs.get("freezer") or self._unique_dirs()[0]
        return files.read_procs(d)

    def stats(self) -> CgroupStats:
        return v1_stats(self._dirs)

    def oom_kill_count(self) -> int:
        counter = self.oom_counter()
        return files.read_keyed(*counter).get("oom_kill", 0) if counter else 0

    def oom_counter(self) -> tuple[str, str] | None:
        d = self._dirs.get("memory")
        return (d, "memory.oom_control") if d else None

    def destroy(self) -> None:
        for d in self._unique_dirs():
            files.remove_tree(d)


def _check_usage(memory_dir: str, limit: int | None) -> None:
    usage = files.read_int(memory_dir, "memory.usage_in_bytes", 0) or 0
    if limit and limit > 0 and usage > limit:
        raise CgroupError(f"linux.resources.memory.limit: {limit} is below the current usage "
                          f"{usage} (checkBeforeUpdate)")
