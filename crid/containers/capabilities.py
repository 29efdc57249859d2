"""Capability sets for containers: the default set, CRI add/drop with or without `CAP_`, `ALL`."""

from __future__ import annotations

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


def container_caps(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool) -> list[str]:
    """The bounding/effective/permitted set, in containerd's order: `ALL` adds, `ALL` drops,
    then single adds, then single drops (so a named drop wins over a named add)."""
    if privileged:
        return list(ALL_CAPS)
    adds = [normalize(c) for c in add]
    drops = [normalize(c) for c in drop]
    caps = list(ALL_CAPS) if "ALL" in adds else list(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = []
    caps += [c for c in dict.fromkeys(adds) if c != "ALL" and c not in caps]
    return [c for c in caps if c not in drops]
