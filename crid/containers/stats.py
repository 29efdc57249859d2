"""Resource usage of containers and pods: cgroup stats, writable layer, pod network.

CPU usage in nanocores needs two samples: each reader keeps the last sample per cgroup and
reports the rate since then (0 on the first sample, as cAdvisor does until it has two).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from crid.containers.rootfs import writable_layer_usage
from runtime.cgroups import CgroupStats, open_cgroup, parse_cgroups_path
from runtime.errors import OCIRuntimeError


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
    oom_kills: int


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
    """Samples cgroups by path, remembering the previous CPU sample of each."""

    def __init__(self) -> None:
        self._prev: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def sample(self, cgroups_path: str) -> Usage | None:
        """Usage of the cgroup at cgroups_path (an OCI cgroupsPath); None when it is gone."""
        try:
            cg = open_cgroup(parse_cgroups_path(cgroups_path, "x"))
            if not cg.exists():
                return None
            st = cg.stats()
        except (OSError, OCIRuntimeError):
            return None
        return self._usage(cgroups_path, st)

    def forget(self, cgroups_path: str) -> None:
        with self._lock:
            self._prev.pop(cgroups_path, None)

    def _usage(self, key: str, st: CgroupStats) -> Usage:
        with self._lock:
            prev = self._prev.get(key)
            self._prev[key] = (st.timestamp_ns, st.cpu.usage_ns)
        nano = 0
        if prev is not None and st.timestamp_ns > prev[0] and st.cpu.usage_ns >= prev[1]:
            nano = (st.cpu.usage_ns - prev[1]) * 1_000_000_000 // (st.timestamp_ns - prev[0])
        mem = st.memory
        available = max(0, mem.limit - mem.working_set) if mem.limit else 0
        return Usage(cpu=CpuUsage(st.timestamp_ns, st.cpu.usage_ns, nano),
                     memory_usage=mem.usage, working_set=mem.working_set, rss=mem.rss,
                     available=available, page_faults=mem.page_faults,
                     major_page_faults=mem.major_page_faults, swap=mem.swap,
                     processes=st.pids.current, oom_kills=mem.oom_kills)


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
