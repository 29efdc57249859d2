"""Resource usage of containers and pods: cgroup stats, writable layer, pod network.

CPU usage in nanocores is a rate: the reader keeps the previous sample of each cgroup and reports
the rate since then; the first sample of a cgroup measures from `since_ns` (the container's start,
the pod's creation) with zero usage, so even the first call after a start has a rate and no
caller needs to sample twice. A sample younger than SAMPLE_REUSE is handed out again (the
kubelet asks ListContainerStats and ListPodSandboxStats, which repeats every container, back to
back).

Writable-layer usage is a walk of the upper directory, cached per container: a cached figure
is reused while it is younger than WALK_COST_FACTOR times the time its walk took, clamped to
[LAYER_MIN_AGE, LAYER_MAX_AGE] (1 s .. 60 s; cAdvisor refreshes layer usage once a minute).
Walking thus costs at most 1/WALK_COST_FACTOR of the time, whatever the layer holds; a small
layer is fresh on every 10 s kubelet scrape, a large one at most a minute old.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from crid.containers.cgroup_sample import CgroupDirs, RawSample
from crid.containers.rootfs import writable_layer_usage
from runtime.api import (
    CgroupError,
    OCIRuntimeError,
    cgroup_paths_of,
    open_cgroup,
    parse_cgroups_path,
    read_mounts,
)

SAMPLE_REUSE_NS = 500_000_000
LAYER_MIN_AGE = 1.0
LAYER_MAX_AGE = 60.0
WALK_COST_FACTOR = 1000
# Directory fds kept open (3 per cgroup on v1); beyond it cgroups are opened per sample.
MAX_KEPT_CGROUPS = 1024


@dataclass(frozen=True)
class CpuUsage:
    timestamp_ns: int
    usage_ns: int
    nano_cores: int


@dataclass(frozen=True)
class Usage:
    """One sample of a cgroup's usage (a container's or a pod's)."""

    cpu: CpuUsage
    memory_usage: int
    working_set: int
    rss: int
    available: int  # limit - working set, 0 when unlimited
    page_faults: int
    major_page_faults: int
    swap: int
    processes: int


@dataclass(frozen=True)
class NetUsage:
    interface: str
    rx_bytes: int
    rx_errors: int
    tx_bytes: int
    tx_errors: int


@dataclass(frozen=True)
class LayerUsage:
    timestamp_ns: int
    used_bytes: int
    inodes: int
    mountpoint: str


class CgroupReader:
    """Samples cgroups by OCI cgroupsPath, keeping each one's directories open and its previous
    sample. Thread-safe; `retain` closes what is no longer asked for."""

    def __init__(self) -> None:
        try:
            self._mounts = read_mounts()
            self._own = cgroup_paths_of("self")
        except (OSError, CgroupError):
            self._mounts, self._own = [], {}
        limit = _fd_limit()
        self._max_kept = min(MAX_KEPT_CGROUPS, limit // 16) if limit > 0 else MAX_KEPT_CGROUPS
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def sample(self, cgroups_path: str, since_ns: int = 0) -> Usage | None:
        """Usage of the cgroup at cgroups_path (an OCI cgroupsPath); None when it is gone.

        `since_ns`: when the cgroup's usage started from zero (its container's start), the base
        of the CPU rate of the first sample."""
        now = time.time_ns()
        with self._lock:  # held while reading: retain() must not close fds in use
            entry = self._entries.get(cgroups_path)
            if entry is not None and entry.usage is not None and \
                    now - entry.usage.cpu.timestamp_ns < SAMPLE_REUSE_NS:
                return entry.usage
            if entry is None:
                if len(self._entries) >= self._max_kept:
                    return self._once(cgroups_path, since_ns)
                entry = self._entries[cgroups_path] = _Entry()
            raw = self._read(entry, cgroups_path)
            if raw is None:
                self._drop(cgroups_path)
                return None
            entry.usage = _usage(raw, entry.usage, since_ns)
            return entry.usage

    def forget(self, cgroups_path: str) -> None:
        with self._lock:
            self._drop(cgroups_path)

    def retain(self, cgroups_paths: Collection[str]) -> None:
        """Closes the directories of, and forgets, every cgroup not in cgroups_paths."""
        with self._lock:
            for key in self._entries.keys() - set(cgroups_paths):
                self._drop(key)

    def _read(self, entry: _Entry, cgroups_path: str) -> RawSample | None:
        if entry.dirs is not None:
            raw = entry.dirs.sample()
            if raw is not None:
                return raw
            entry.dirs.close()  # removed, perhaps made again: open afresh once
        entry.dirs = self._open(cgroups_path)
        return entry.dirs.sample() if entry.dirs is not None else None

    def _once(self, cgroups_path: str, since_ns: int) -> Usage | None:
        """A sample over the cap of kept cgroups: opened, read and closed."""
        dirs = self._open(cgroups_path)
        if dirs is None:
            return None
        try:
            raw = dirs.sample()
        finally:
            dirs.close()
        return _usage(raw, None, since_ns) if raw is not None else None

    def _open(self, cgroups_path: str) -> CgroupDirs | None:
        try:
            cg = open_cgroup(parse_cgroups_path(cgroups_path, "x"), self._mounts, self._own)
        except (OSError, OCIRuntimeError):
            return None
        return CgroupDirs.open(cg.version, cg.dirs())

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.dirs is not None:
            entry.dirs.close()


class _Entry:
    """A kept cgroup: its open directories and its last sample (the base of the next rate)."""

    def __init__(self) -> None:
        self.dirs: CgroupDirs | None = None
        self.usage: Usage | None = None


def _fd_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _usage(raw: RawSample, prev: Usage | None, since_ns: int) -> Usage:
    if prev is not None:
        base_ts, base_cpu = prev.cpu.timestamp_ns, prev.cpu.usage_ns
    else:
        base_ts, base_cpu = since_ns, 0
    nano = 0
    if 0 < base_ts < raw.timestamp_ns and raw.cpu_ns >= base_cpu:
        nano = (raw.cpu_ns - base_cpu) * 1_000_000_000 // (raw.timestamp_ns - base_ts)
    available = max(0, raw.limit - raw.working_set) if raw.limit else 0
    return Usage(cpu=CpuUsage(raw.timestamp_ns, raw.cpu_ns, nano),
                 memory_usage=raw.memory_usage, working_set=raw.working_set, rss=raw.rss,
                 available=available, page_faults=raw.page_faults,
                 major_page_faults=raw.major_page_faults, swap=raw.swap,
                 processes=raw.processes)


class LayerCache:
    """Writable-layer usage per container directory, reused within the bound the module
    docstring gives. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cached: dict[Path, tuple[LayerUsage, float]] = {}  # usage, valid until
        self._lock = threading.Lock()

    def usage(self, container_dir: Path) -> LayerUsage:
        now = self._clock()
        with self._lock:
            hit = self._cached.get(container_dir)
        if hit is not None and now < hit[1]:
            return hit[0]
        used = layer_usage(container_dir, time.time_ns())
        took = self._clock() - now
        age = min(LAYER_MAX_AGE, max(LAYER_MIN_AGE, took * WALK_COST_FACTOR))
        with self._lock:
            self._cached[container_dir] = (used, now + age)
        return used

    def retain(self, container_dirs: Collection[Path]) -> None:
        with self._lock:
            for gone in self._cached.keys() - set(container_dirs):
                del self._cached[gone]


def layer_usage(container_dir: Path, timestamp_ns: int) -> LayerUsage:
    used, inodes = writable_layer_usage(container_dir)
    return LayerUsage(timestamp_ns, used, inodes, str(container_dir / "upper"))


def net_usage(pid: int) -> list[NetUsage]:
    """Counters of the interfaces (loopback aside) in the network namespace of pid."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return []
    out = []
    for line in lines:
        name, _, rest = line.partition(":")
        f = rest.split()
        if name.strip() == "lo" or len(f) < 16:
            continue
        out.append(NetUsage(name.strip(), int(f[0]), int(f[2]), int(f[8]), int(f[10])))
    return out
