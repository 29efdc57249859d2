"""The CRI's LinuxContainerResources as a domain value, shared by containers (a container's
limits) and pods (a sandbox's overhead and resources, applied to the pod cgroup).

`crid/server/container_convert.py` builds it from protobuf; containers turn it into OCI
`linux.resources`, pods into the runtime's cgroup limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resources:
    """Limits as the kubelet sends them; 0 and "" mean unset."""

    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit: int = 0
    memory_swap_limit: int = 0
    oom_score_adj: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    hugepages: tuple[tuple[str, int], ...] = ()  # (page size, limit)
    unified: tuple[tuple[str, str], ...] = ()  # (cgroup v2 file, value), sorted

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Resources:
        """The value from its JSON record (`dataclasses.asdict`); records written before pods shared
        this type name the memory limit `memory_limit_in_bytes`."""
        rec = dict(rec)
        if "memory_limit_in_bytes" in rec:
            rec["memory_limit"] = rec.pop("memory_limit_in_bytes")
        for key in ("hugepages", "unified"):
            rec[key] = tuple(tuple(pair) for pair in rec.get(key, ()))
        return cls(**rec)
