"""Capability sets for containers: the default set, CRI add/drop with or without `CAP_`, `ALL`,
within what the engine itself may grant.

The engine can give a container only what is in its own bounding set: root lacks
CAP_SYS_RESOURCE on kind nodes, in nested containers and on many hardened hosts. containerd
builds a privileged container's set from the capabilities it holds; crid does the same for
privileged, `ALL` and named adds, so such containers start with what can be had.
"""

from __future__ import annotations

from pathlib import Path

from crid import logs
from crid.containers.model import Security
from crid.errors import InvalidArgument

# Linux capabilities in number order (capability.h), up to CAP_CHECKPOINT_RESTORE (40).
ALL_CAPS = tuple("CAP_" + n for n in (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE").split())

# containerd's default set for unprivileged containers.
DEFAULT_CAPS = tuple("CAP_" + n for n in (
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
    "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE").split())


def normalize(name: str) -> str:
    """`net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all mean CAP_NET_ADMIN; `ALL` stays ALL.

    Raises:
        InvalidArgument: an unknown capability.
    """
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPS:
        raise InvalidArgument(f"unknown capability {name!r}")
    return full


def engine_caps(status: Path = Path("/proc/self/status")) -> frozenset[str]:
    """The capabilities in this process's bounding set (``CapBnd``), the most a container it
    makes can hold. All of them when the file cannot be read."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split(":", 1)[1], 16)
                return frozenset(c for i, c in enumerate(ALL_CAPS) if mask >> i & 1)
    except (OSError, ValueError):
        pass
    return frozenset(ALL_CAPS)


def container_caps(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool,
                   grantable: frozenset[str] = frozenset(ALL_CAPS)) -> list[str]:
    """The bounding/effective/permitted set, in containerd's order: `ALL` adds, `ALL` drops,
    then single adds, then single drops (so a named drop wins over a named add); only what is
    in `grantable` (the engine's bounding set).

    Raises:
        InvalidArgument: an unknown capability.
    """
    return [c for c in requested_caps(add, drop, privileged) if c in grantable]


def requested_caps(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool) -> list[str]:
    """The set `container_caps` gives before it is limited to what the engine holds.

    Raises:
        InvalidArgument: an unknown capability.
    """
    if privileged:
        return list(ALL_CAPS)
    adds = [normalize(c) for c in add]
    drops = [normalize(c) for c in drop]
    caps = list(ALL_CAPS) if "ALL" in adds else list(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = []
    caps += [c for c in dict.fromkeys(adds) if c != "ALL" and c not in caps]
    return [c for c in caps if c not in drops]


def ungranted(grantable: frozenset[str]) -> list[str]:
    """The capabilities no container can get from this engine, in number order."""
    return [c for c in ALL_CAPS if c not in grantable]


def log_ungranted(cid: str, sec: Security, grantable: frozenset[str]) -> None:
    """Debug line for a container asking for capabilities the engine does not hold."""
    left_out = [c for c in requested_caps(sec.caps_add, sec.caps_drop, sec.privileged)
                if c not in grantable]
    if left_out:
        _log.debug("capabilities the engine does not hold, not granted", container_id=cid,
                   capabilities=left_out)


_log = logs.get("crid.containers")
