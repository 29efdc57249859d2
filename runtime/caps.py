"""Linux capabilities: the name <-> number table and applying the five OCI sets.

``apply_bounding`` and ``apply_sets`` run in the container process; the order around setuid is
runc's: drop the bounding set, set PR_SET_KEEPCAPS, change user, clear KEEPCAPS, then capset the
effective/permitted/inheritable sets and raise the ambient ones.

A spec may ask for capabilities the runtime itself does not hold (root without
CAP_SYS_RESOURCE on kind nodes, nested containers, hardened hosts): those are left out, as
containerd leaves them out of a privileged spec, instead of failing the container with
capset's EPERM; ``log_ungranted`` says which at debug level. Ambient capabilities outside the
granted permitted and inheritable sets are skipped, as runc does (its default spec lists
ambient capabilities but no inheritable set).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from runtime.linux import libc
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


@dataclass(frozen=True)
class Held:
    """The capability sets a process holds."""

    effective: int
    permitted: int
    inheritable: int
    bounding: int


def held() -> Held:
    """The calling thread's sets (the bounding set read one capability at a time)."""
    eff, perm, inh = libc.capget()
    bounding = 0
    for n in range(last_cap() + 1):
        if libc.prctl(libc.PR_CAPBSET_READ, n) == 1:
            bounding |= 1 << n
    return Held(eff, perm, inh, bounding)


_SETPCAP = 1 << CAP_NUMBERS["CAP_SETPCAP"]


def grantable(m: CapMasks, h: Held) -> CapMasks:
    """What of m a process holding h can give itself with capset and PR_CAP_AMBIENT_RAISE
    (capabilities(7) and the kernel's cap_capset): permitted within the held permitted set,
    effective within the new permitted, inheritable within held inheritable|bounding (and
    inheritable|permitted without CAP_SETPCAP), ambient within the new permitted & inheritable.
    The bounding set is unchanged: dropping from it never fails for want of a capability."""
    permitted = m.permitted & h.permitted
    inheritable = m.inheritable & (h.inheritable | h.bounding)
    if not h.effective & _SETPCAP:
        inheritable &= h.inheritable | h.permitted
    return CapMasks(m.bounding, m.effective & permitted, permitted, inheritable,
                    m.ambient & permitted & inheritable)


def log_ungranted(what: str, m: CapMasks, h: Held | None = None) -> None:
    """Debug lines naming the capabilities of m that a process holding h (default: this one)
    leaves out; nothing is read when debug logging is off.

    ``logging`` is not imported here: a process that never imported it has no handler to
    enable (the zygote and its monitors). Importing it would import ``threading``, whose
    at-fork hook costs every process the zygote forks ~400 KiB of private pages."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    _log = logging.getLogger("runtime.caps")
    if not _log.isEnabledFor(logging.DEBUG):
        return
    g = grantable(m, h or held())
    missing = (m.effective | m.permitted | m.inheritable) & ~(g.effective | g.permitted
                                                              | g.inheritable)
    if missing:
        _log.debug("%s: capabilities the runtime does not hold, not granted: %s", what,
                   ", ".join(mask_names(missing)))
    if m.ambient & ~g.ambient:
        _log.debug("%s: ambient capabilities not in the permitted and inheritable sets, "
                   "not raised: %s", what, ", ".join(mask_names(m.ambient & ~g.ambient)))


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
    """capset effective/permitted/inheritable, then raise the ambient set; each only as far
    as this process can grant it (see ``grantable``)."""
    m = grantable(m, held())
    libc.capset(m.effective, m.permitted, m.inheritable)
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    for n in range(last_cap() + 1):
        if m.ambient >> n & 1:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, n)
