"""`docker stats`: cgroup usage in Docker's stats JSON, one sample or a stream (1 s apart).

The CLI draws CPU % as (cpu delta / system delta) x online CPUs from each sample and the one
before it (`precpu_stats`), and memory as usage less the inactive file cache.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

from crid.containers.stats import CgroupReader, Usage, net_usage
from crid.docker.containers_view import DockerContainer, find
from crid.docker.deps import DockerDeps
from crid.docker.http import Request, Response
from crid.docker.inspect import rfc3339

INTERVAL = 1.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(v) for v in fields[:8]) * 1_000_000_000 // _CLK_TCK


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu(u: Usage | None, system_ns: int) -> dict[str, Any]:
    total = u.cpu.usage_ns if u is not None else 0
    return {"cpu_usage": {"total_usage": total, "usage_in_kernelmode": 0,
                          "usage_in_usermode": 0},
            "system_cpu_usage": system_ns, "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _memory(u: Usage | None) -> dict[str, Any]:
    if u is None:
        return {}
    limit = u.working_set + u.available if u.available else _host_memory()
    inactive = max(0, u.memory_usage - u.working_set)
    return {"usage": u.memory_usage, "limit": limit,
            "stats": {"total_inactive_file": inactive, "inactive_file": inactive,
                      "rss": u.rss, "pgfault": u.page_faults, "pgmajfault": u.major_page_faults}}


def _networks(c: DockerContainer) -> dict[str, Any]:
    pid = c.record.pid if c.record is not None else 0
    return {n.interface: {"rx_bytes": n.rx_bytes, "rx_errors": n.rx_errors, "rx_packets": 0,
                          "rx_dropped": 0, "tx_bytes": n.tx_bytes, "tx_errors": n.tx_errors,
                          "tx_packets": 0, "tx_dropped": 0}
            for n in (net_usage(pid) if pid and c.running else [])}


def sample(reader: CgroupReader, c: DockerContainer) -> dict[str, Any]:
    """One stats record (precpu_stats empty: the caller fills it from the one before)."""
    r = c.record
    u = reader.sample(r.cgroups_path, r.started_at) if r is not None and c.running else None
    return {"read": rfc3339(time.time_ns()), "preread": rfc3339(0), "id": c.id,
            "name": "/" + c.name, "pids_stats": {"current": u.processes} if u else {},
            "cpu_stats": _cpu(u, _system_cpu_ns()), "precpu_stats": {"cpu_usage": {
                "total_usage": 0}, "throttling_data": {}},
            "memory_stats": _memory(u), "networks": _networks(c), "blkio_stats": {},
            "num_procs": 0, "storage_stats": {}}


def _stream(d: DockerDeps, ref: str, reader: CgroupReader, stream: bool,
            one_shot: bool) -> Iterator[bytes]:
    try:
        yield from _samples(d, ref, reader, stream, one_shot)
    finally:
        reader.retain(())  # close the cgroup directories it kept open


def _samples(d: DockerDeps, ref: str, reader: CgroupReader, stream: bool,
             one_shot: bool) -> Iterator[bytes]:
    prev: dict[str, Any] | None = None
    while True:
        c = find(d, ref)
        now = sample(reader, c)
        if prev is not None:
            now["precpu_stats"], now["preread"] = prev["cpu_stats"], prev["read"]
        if stream or one_shot or prev is not None:
            yield json.dumps(now).encode() + b"\n"
            if not stream or not c.running:
                return
        prev = now
        time.sleep(INTERVAL)


def stats(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])  # 404 before the stream starts
    reader = CgroupReader()
    return Response(200, _stream(d, c.id, reader, req.flag("stream", True),
                                 req.flag("one-shot")))
