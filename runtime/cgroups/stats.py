"""Resource usage of a cgroup as one dataclass, read from v1 or v2 interface files.

Field meanings follow cAdvisor/kubelet (what CRI ``ContainerStats`` carries): the working set
is usage minus inactive file pages, floored at 0.
"""

from __future__ import annotations

import os
import time

from runtime.cgroups import files
from runtime.records import dataclass

_V1_UNLIMITED = 1 << 62  # memory.limit_in_bytes reports PAGE_COUNTER_MAX * page size


@dataclass(frozen=True)
class CpuStats:
    usage_ns: int = 0
    user_ns: int = 0
    system_ns: int = 0
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@dataclass(frozen=True)
class MemoryStats:
    usage: int = 0
    working_set: int = 0
    rss: int = 0
    cache: int = 0
    swap: int = 0
    limit: int | None = None  # None: unlimited
    max_usage: int | None = None
    page_faults: int = 0
    major_page_faults: int = 0
    oom_events: int = 0  # times the limit was hit and the OOM killer ran
    oom_kills: int = 0  # processes killed by it


@dataclass(frozen=True)
class PidsStats:
    current: int = 0
    limit: int | None = None  # None: unlimited


@dataclass(frozen=True)
class CgroupStats:
    timestamp_ns: int
    cpu: CpuStats
    memory: MemoryStats
    pids: PidsStats


def v1_stats(dirs: dict[str, str]) -> CgroupStats:
    """Stats from v1 hierarchies; ``dirs`` maps controller -> directory (missing: zeros)."""
    return CgroupStats(time.time_ns(), _v1_cpu(dirs), _v1_memory(dirs.get("memory")),
                       _pids(dirs.get("pids")))


def v2_stats(directory: str) -> CgroupStats:
    """Stats from one cgroup2 directory (files of controllers not enabled read as zeros)."""
    return CgroupStats(time.time_ns(), _v2_cpu(directory), _v2_memory(directory),
                       _pids(directory))


def _v1_cpu(dirs: dict[str, str]) -> CpuStats:
    acct, cpu = dirs.get("cpuacct"), dirs.get("cpu")
    usage = user = system = 0
    if acct:
        usage = files.read_int(acct, "cpuacct.usage", 0) or 0
        user = files.read_int(acct, "cpuacct.usage_user", -1) or 0
        system = files.read_int(acct, "cpuacct.usage_sys", -1) or 0
        if not files.exists(acct, "cpuacct.usage_user"):  # older kernels: USER_HZ ticks
            ticks = files.read_keyed(acct, "cpuacct.stat")
            hz = os.sysconf("SC_CLK_TCK")
            user = ticks.get("user", 0) * 1_000_000_000 // hz
            system = ticks.get("system", 0) * 1_000_000_000 // hz
    st = files.read_keyed(cpu, "cpu.stat") if cpu else {}
    return CpuStats(usage, user, system, st.get("nr_periods", 0), st.get("nr_throttled", 0),
                    st.get("throttled_time", 0))


def _v1_memory(d: str | None) -> MemoryStats:
    if not d:
        return MemoryStats()
    st = files.read_keyed(d, "memory.stat")
    usage = files.read_int(d, "memory.usage_in_bytes", 0) or 0
    memsw = files.read_int(d, "memory.memsw.usage_in_bytes", None)
    limit = files.read_int(d, "memory.limit_in_bytes", None)
    oom = files.read_keyed(d, "memory.oom_control")
    return MemoryStats(
        usage=usage,
        working_set=max(0, usage - st.get("total_inactive_file", 0)),
        rss=st.get("total_rss", 0),
        cache=st.get("total_cache", 0),
        swap=max(0, memsw - usage) if memsw is not None else st.get("total_swap", 0),
        limit=None if limit is None or limit >= _V1_UNLIMITED else limit,
        max_usage=files.read_int(d, "memory.max_usage_in_bytes", None),
        page_faults=st.get("total_pgfault", 0),
        major_page_faults=st.get("total_pgmajfault", 0),
        oom_events=oom.get("oom_kill", 0),  # v1 counts no OOM events apart from the kills
        oom_kills=oom.get("oom_kill", 0),
    )


def _v2_cpu(d: str) -> CpuStats:
    st = files.read_keyed(d, "cpu.stat")
    return CpuStats(st.get("usage_usec", 0) * 1000, st.get("user_usec", 0) * 1000,
                    st.get("system_usec", 0) * 1000, st.get("nr_periods", 0),
                    st.get("nr_throttled", 0), st.get("throttled_usec", 0) * 1000)


def _v2_memory(d: str) -> MemoryStats:
    st = files.read_keyed(d, "memory.stat")
    usage = files.read_int(d, "memory.current", 0) or 0
    events = files.read_keyed(d, "memory.events")
    return MemoryStats(
        usage=usage,
        working_set=max(0, usage - st.get("inactive_file", 0)),
        rss=st.get("anon", 0),
        cache=st.get("file", 0),
        swap=files.read_int(d, "memory.swap.current", 0) or 0,
        limit=files.read_int(d, "memory.max", None) if files.exists(d, "memory.max") else None,
        max_usage=files.read_int(d, "memory.peak", None),
        page_faults=st.get("pgfault", 0),
        major_page_faults=st.get("pgmajfault", 0),
        oom_events=events.get("oom", 0),
        oom_kills=events.get("oom_kill", 0),
    )


def _pids(d: str | None) -> PidsStats:
    if not d:
        return PidsStats()
    return PidsStats(files.read_int(d, "pids.current", 0) or 0,
                     files.read_int(d, "pids.max", None))
