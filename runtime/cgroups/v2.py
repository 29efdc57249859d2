"""cgroup v2: one directory in the unified hierarchy."""

from __future__ import annotations

import os
import signal

from runtime.cgroups import files
from runtime.cgroups.convert import v2_writes
from runtime.cgroups.device_filter import attach_device_filter
from runtime.cgroups.errors import CgroupError
from runtime.cgroups.freezer import FreezerState, signal_frozen, wait_frozen
from runtime.cgroups.paths import CgroupPath, Mount, dir_in_mount
from runtime.cgroups.resources import DeviceRule, Resources
from runtime.cgroups.stats import CgroupStats, v2_stats


class V2Manager:
    """``CgroupManager`` for the unified hierarchy (see ``manager.CgroupManager``).

    ``mount`` is the cgroup2 mount to work under: the host's /sys/fs/cgroup normally; tests
    pass a sub-tree (or a directory imitating one) as the mount.
    """

    version = 2

    def __init__(self, path: CgroupPath, mount: Mount, own: str = "/") -> None:
        self.path = path
        self._mount = mount
        base = "/" if path.absolute else own
        self._dir = dir_in_mount(mount, os.path.join(base, path.path.lstrip("/")))

    def dirs(self) -> dict[str, str]:
        return {"": self._dir}

    def hierarchies(self) -> list[tuple[str, int, str]]:
        return [(self._mount.mountpoint, 2, self._dir)]

    def exists(self) -> bool:
        return os.path.isdir(self._dir)

    def create(self) -> None:
        """mkdir, enabling every available controller on the way down so the cgroup gets the
        interface files (cgroup.subtree_control of each ancestor, as runc does)."""
        top = self._mount.mountpoint
        rel = os.path.relpath(self._dir, top)
        parent = top
        for part in [] if rel == "." else rel.split("/"):
            _enable_controllers(parent)
            child = os.path.join(parent, part)
            try:
                os.makedirs(child, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"creating cgroup {child}: {e.strerror}") from e
            parent = child

    def apply(self, pid: int) -> None:
        files.write(self._dir, "cgroup.procs", pid)

    def set(self, resources: Resources) -> None:
        m = resources.memory
        if m and m.check_before_update and m.limit and m.limit > 0:
            usage = files.read_int(self._dir, "memory.current", 0) or 0
            if usage > m.limit:
                raise CgroupError(f"linux.resources.memory.limit: {m.limit} is below the current "
                                  f"usage {usage} (checkBeforeUpdate)")
        for w in v2_writes(resources, files.exists(self._dir, "io.bfq.weight")):
            if not files.exists(self._dir, w.file):
                if w.optional:
                    continue
                raise CgroupError(f"{w.field}: {w.file} does not exist in {self._dir} (the "
                                  f"{w.controller} controller is not enabled for it)")
            files.write(self._dir, w.file, w.value, w.field)
        if resources.devices:
            self._set_devices(resources.devices)

    def _set_devices(self, rules: tuple[DeviceRule, ...]) -> None:
        attach_device_filter(self._dir, rules)

    def freeze(self) -> None:
        files.write(self._dir, "cgroup.freeze", "1")
        try:
            wait_frozen(self.state, lambda: None, self._dir)
        except CgroupError:
            files.write(self._dir, "cgroup.freeze", "0")
            raise

    def thaw(self) -> None:
        files.write(self._dir, "cgroup.freeze", "0")

    def state(self) -> FreezerState:
        if files.read_opt(self._dir, "cgroup.freeze") != "1":
            return FreezerState.THAWED
        frozen = files.read_keyed(self._dir, "cgroup.events").get("frozen", 0)
        return FreezerState.FROZEN if frozen == 1 else FreezerState.FREEZING

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL and files.exists(self._dir, "cgroup.kill"):
            files.write(self._dir, "cgroup.kill", "1")
            return
        signal_frozen(self.freeze, self.thaw, self.pids, sig)

    def pids(self) -> list[int]:
        return files.read_procs(self._dir)

    def stats(self) -> CgroupStats:
        return v2_stats(self._dir)

    def oom_kill_count(self) -> int:
        return files.read_keyed(*self.oom_counter()).get("oom_kill", 0)

    def oom_counter(self) -> tuple[str, str]:
        return (self._dir, "memory.events")

    def destroy(self) -> None:
        files.remove_tree(self._dir)


def _enable_controllers(directory: str) -> None:
    """Write ``+ctrl`` for each controller of ``cgroup.controllers`` not yet in
    ``cgroup.subtree_control``; one at a time, skipping the ones the kernel refuses (a
    controller can be busy, e.g. cpuset with threaded children), as runc does."""
    available = (files.read_opt(directory, "cgroup.controllers") or "").split()
    enabled = set((files.read_opt(directory, "cgroup.subtree_control") or "").split())
    for c in available:
        if c not in enabled:
            try:
                files.write(directory, "cgroup.subtree_control", f"+{c}")
            except CgroupError:
                continue
