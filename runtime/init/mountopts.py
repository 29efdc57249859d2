"""Parse OCI mount options into mount(2) flags, propagation flags and filesystem data.

Pure functions (unit tested); the option table is runc's (libcontainer/specconv).
"""

from __future__ import annotations

from runtime.linux import libc
from runtime.records import dataclass

# option -> (clear?, flag)
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "async": (True, libc.MS_SYNCHRONOUS), "atime": (True, libc.MS_NOATIME),
    "bind": (False, libc.MS_BIND), "defaults": (False, 0), "dev": (True, libc.MS_NODEV),
    "diratime": (True, libc.MS_NODIRATIME), "dirsync": (False, libc.MS_DIRSYNC),
    "exec": (True, libc.MS_NOEXEC), "iversion": (False, 1 << 23),
    "lazytime": (False, libc.MS_LAZYTIME), "loud": (True, libc.MS_SILENT),
    "mand": (False, libc.MS_MANDLOCK), "noatime": (False, libc.MS_NOATIME),
    "nodev": (False, libc.MS_NODEV), "nodiratime": (False, libc.MS_NODIRATIME),
    "noexec": (False, libc.MS_NOEXEC), "noiversion": (True, 1 << 23),
    "nolazytime": (True, libc.MS_LAZYTIME), "nomand": (True, libc.MS_MANDLOCK),
    "norelatime": (True, libc.MS_RELATIME), "nostrictatime": (True, libc.MS_STRICTATIME),
    "nosuid": (False, libc.MS_NOSUID), "nosymfollow": (False, libc.MS_NOSYMFOLLOW),
    "rbind": (False, libc.MS_BIND | libc.MS_REC), "relatime": (False, libc.MS_RELATIME),
    "remount": (False, libc.MS_REMOUNT), "ro": (False, libc.MS_RDONLY),
    "rw": (True, libc.MS_RDONLY), "silent": (False, libc.MS_SILENT),
    "strictatime": (False, libc.MS_STRICTATIME), "suid": (True, libc.MS_NOSUID),
    "sync": (False, libc.MS_SYNCHRONOUS), "symfollow": (True, libc.MS_NOSYMFOLLOW),
}
PROPAGATION_OPTIONS: dict[str, int] = {
    "private": libc.MS_PRIVATE, "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "shared": libc.MS_SHARED, "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE, "rslave": libc.MS_SLAVE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE, "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}
# Recursive variants, applied to the mount and every mount below it with
# mount_setattr(AT_RECURSIVE) (runc's table): option -> (clear?, MOUNT_ATTR_*).
RECURSIVE_OPTIONS: dict[str, tuple[bool, int]] = {
    "rro": (False, libc.MOUNT_ATTR_RDONLY), "rrw": (True, libc.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, libc.MOUNT_ATTR_NOSUID), "rsuid": (True, libc.MOUNT_ATTR_NOSUID),
    "rnodev": (False, libc.MOUNT_ATTR_NODEV), "rdev": (True, libc.MOUNT_ATTR_NODEV),
    "rnoexec": (False, libc.MOUNT_ATTR_NOEXEC), "rexec": (True, libc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, libc.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, libc.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, libc.MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, libc.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, libc.MOUNT_ATTR_NOATIME), "ratime": (True, libc.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, libc.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, libc.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, libc.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, libc.MOUNT_ATTR_NOSYMFOLLOW),
}
_ATIME_MODES = (libc.MOUNT_ATTR_RELATIME, libc.MOUNT_ATTR_NOATIME, libc.MOUNT_ATTR_STRICTATIME)
# Accepted and ignored: runtime extensions we do not do.
IGNORED_OPTIONS = frozenset({"tmpcopyup"})
IDMAP_OPTIONS = frozenset({"idmap", "ridmap"})
FLAGS_KEPT_ON_REMOUNT = (libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
                         | libc.MS_NOATIME | libc.MS_NODIRATIME | libc.MS_RELATIME
                         | libc.MS_STRICTATIME | libc.MS_NOSYMFOLLOW)


@dataclass(frozen=True)
class MountOptions:
    flags: int  # mount(2) flags including MS_BIND/MS_REC for binds
    propagation: tuple[int, ...]  # applied one by one after the mount
    data: str  # comma-joined filesystem-specific options (mode=755,size=...)
    rec_set: int = 0  # MOUNT_ATTR_* set on the whole tree (mount_setattr AT_RECURSIVE)
    rec_clr: int = 0  # MOUNT_ATTR_* cleared on it

    @property
    def recursive(self) -> bool:
        """Whether mount_setattr(AT_RECURSIVE) has work to do after the mount."""
        return bool(self.rec_set or self.rec_clr)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & libc.MS_BIND)

    @property
    def remount_flags(self) -> int:
        """Flags a bind mount needs a second (MS_REMOUNT) mount(2) call for."""
        return self.flags & FLAGS_KEPT_ON_REMOUNT


def parse(options: tuple[str, ...], mount_type: str = "") -> MountOptions:
    """Split OCI options; unknown ones become filesystem data (as runc and crun do)."""
    flags = libc.MS_BIND if mount_type == "bind" else 0
    prop: list[int] = []
    data: list[str] = []
    rec_set = rec_clr = 0
    for opt in options:
        if opt in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION_OPTIONS:
            prop.append(PROPAGATION_OPTIONS[opt])
        elif opt in RECURSIVE_OPTIONS:
            rec_set, rec_clr = _recursive(opt, rec_set, rec_clr)
        elif opt in IGNORED_OPTIONS or opt in IDMAP_OPTIONS:
            continue
        else:
            data.append(opt)
    return MountOptions(flags, tuple(prop), ",".join(data), rec_set, rec_clr)


def _recursive(opt: str, rec_set: int, rec_clr: int) -> tuple[int, int]:
    """Fold one recursive option into (set, clear); the later of two opposites wins."""
    clear, attr = RECURSIVE_OPTIONS[opt]
    if attr in _ATIME_MODES:
        # The atime mode is one field (MOUNT_ATTR__ATIME): setting one clears the field first;
        # clearing one (rnoatime -> ratime) goes back to the kernel's default, relatime.
        rec_set &= ~libc.MOUNT_ATTR__ATIME
        rec_clr |= libc.MOUNT_ATTR__ATIME
        return (rec_set if clear else rec_set | attr), rec_clr
    if clear:
        return rec_set & ~attr, rec_clr | attr
    return rec_set | attr, rec_clr & ~attr


# statvfs f_flag bits -> mount flags, to re-apply "locked" flags when remounting a bind mount
_ST_TO_MS = ((1, libc.MS_RDONLY), (2, libc.MS_NOSUID), (4, libc.MS_NODEV), (8, libc.MS_NOEXEC),
             (1024, libc.MS_NOATIME), (2048, libc.MS_NODIRATIME), (4096, libc.MS_RELATIME),
             (256, libc.MS_NOSYMFOLLOW))


def statvfs_to_ms(f_flag: int) -> int:
    out = 0
    for st, ms in _ST_TO_MS:
        if f_flag & st:
            out |= ms
    return out
