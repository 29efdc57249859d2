"""Linux capabilities: the name <-> number table and applying the five OCI sets.

``apply_bounding`` and ``apply_sets`` run in the container process; the order around setuid is
runc's: drop the bounding set, set PR_SET_KEEPCAPS, change user, clear KEEPCAPS, then capset the
effective/permitted/inheritable sets and raise the ambient ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from runtime import libc
from runtime.records import dataclass

# Index is the capability number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE = 40.
CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAP_NAMES)}


def cap_number(name: str) -> int:
    """Number of a capability name; accepts "CAP_CHOWN" or "chown". Raises KeyError."""
    key = name.upper()
    if not key.startswith("CAP_"):
        key = "CAP_" + key
    return CAP_NUMBERS[key]


def cap_name(number: int) -> str:
    """Canonical name of a capability number. Raises IndexError for numbers past the table."""
    if number < 0:
        raise IndexError(number)
    return CAP_NAMES[number]


_CAP_LAST_FILE = "/proc/sys/kernel/cap_last_cap"
_kernel_last: list[int] = []  # the running kernel's, read once (the zygote's prewarm reads it)


def last_cap(proc_file: str = _CAP_LAST_FILE) -> int:
    """Highest capability number the running kernel knows (capped at our table)."""
    if proc_file == _CAP_LAST_FILE and _kernel_last:
        return _kernel_last[0]
    try:
        with open(proc_file) as f:
            found = min(int(f.read().strip()), len(CAP_NAMES) - 1)
    except (OSError, ValueError):
        return len(CAP_NAMES) - 1
    if proc_file == _CAP_LAST_FILE:
        _kernel_last.append(found)
    return found


def to_mask(names: Iterable[str], last: int) -> int:
    """Bit mask of the named capabilities, silently dropping those the kernel does not know."""
    mask = 0
    for name in names:
        n = cap_number(name)
        if n <= last:
            mask |= 1 << n
    return mask


def mask_names(mask: int) -> list[str]:
    """Names of the capabilities set in mask (e.g. CapEff from /proc/self/status)."""
    return [name for i, name in enumerate(CAP_NAMES) if mask >> i & 1]


@dataclass(frozen=True)
class CapMasks:
    """The five sets as bit masks, already restricted to what the kernel knows."""

    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


def masks(bounding: Iterable[str], effective: Iterable[str], permitted: Iterable[str],
          inheritable: Iterable[str], ambient: Iterable[str]) -> CapMasks:
    last = last_cap()
    return CapMasks(to_mask(bounding, last), to_mask(effective, last), to_mask(permitted, last),
                    to_mask(inheritable, last), to_mask(ambient, last))


def apply_bounding(m: CapMasks) -> None:
    """Drop every capability not in the bounding set (needs CAP_SETPCAP, so before setuid)."""
    for n in range(last_cap() + 1):
        if not m.bounding >> n & 1:
            try:  # dropping one already gone is a no-op: no PR_CAPBSET_READ per capability
                libc.prctl(libc.PR_CAPBSET_DROP, n)
            except PermissionError:  # no CAP_SETPCAP: fine only if it is not there anyway
                if libc.prctl(libc.PR_CAPBSET_READ, n) == 1:
                    raise


def keep_caps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across the setuid away from root."""
    libc.prctl(libc.PR_SET_KEEPCAPS, 1 if on else 0)


def apply_sets(m: CapMasks) -> None:
    """capset effective/permitted/inheritable, then raise the ambient set.

    Ambient capabilities the kernel refuses (not in permitted and inheritable) raise OSError,
    as runc does.
    """
    libc.capset(m.effective, m.permitted, m.inheritable)
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    for n in range(last_cap() + 1):
        if m.ambient >> n & 1:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, n)
