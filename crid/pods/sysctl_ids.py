"""Sysctls whose value names ids, for a pod with a user namespace of its own (hostUsers:
false).

The kernel reads the gids of `net.ipv4.ping_group_range` in the *writer's* user namespace
and shows them in the reader's. runc writes a container's sysctls from inside its user
namespace, so the values are the container's ids. crid writes a pod's sysctls from a daemon
thread, which cannot enter a user namespace (setns(CLONE_NEWUSER) needs a single-threaded
process), so it writes the host ids the container's ids map to: the same kernel state, and
the container reads back the range it asked for (not the overflow gid 65534 for host ids
its namespace does not map). An upper bound above the pod's range (the usual "0 2147483647",
every group) is lowered to the range's last gid, as CRI-O does, since the kernel refuses a
gid the namespace does not map; a lower bound outside the range is refused.
"""

from __future__ import annotations

from crid.errors import InvalidArgument
from crid.pods.model import IdMapping, UserNamespace

PING_GROUP_RANGE = "net/ipv4/ping_group_range"


def in_host_ids(path: str, value: str, userns: UserNamespace | None) -> str:
    """The value to write from the host for the sysctl at path (under /proc/sys), given the
    pod's user namespace; unchanged for other sysctls and pods without one.

    Raises InvalidArgument naming the sysctl when a gid it needs is not mapped."""
    if userns is None or path != PING_GROUP_RANGE:
        return value
    parts = value.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return value  # the kernel refuses it (InvalidArgument from the write)
    low, high = int(parts[0]), int(parts[1])
    last = max(m.container_id + m.length - 1 for m in userns.gids)
    high = min(high, last)
    host_low, host_high = _to_host(low, userns.gids), _to_host(high, userns.gids)
    if host_low is None or host_high is None:
        bad = low if host_low is None else high
        raise InvalidArgument(f"sysctl net.ipv4.ping_group_range: gid {bad} is not mapped in "
                              f"the pod's user namespace (gids {_ranges(userns.gids)})")
    return f"{host_low} {host_high}"


def _to_host(gid: int, maps: tuple[IdMapping, ...]) -> int | None:
    for m in maps:
        if m.container_id <= gid < m.container_id + m.length:
            return m.host_id + gid - m.container_id
    return None


def _ranges(maps: tuple[IdMapping, ...]) -> str:
    return ", ".join(f"{m.container_id}-{m.container_id + m.length - 1}" for m in maps)
