"""The mount calls as a seam: code that mounts takes a `MountCalls` (the kernel's, `LINUX`, by
default), so its logic — options, order, what is undone on failure — is unit-tested without
root against a recording fake (tests/unit/fakes/syscalls.py), as youki's TestHelperSyscall
does. The integration tests run the same code on the real kernel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from runtime.linux import libc


class MountCalls(Protocol):
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None) -> None: ...
    def umount2(self, target: str, flags: int = 0) -> None: ...
    def open_tree(self, dirfd: int, path: str, flags: int) -> int: ...
    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int = 0,
                      attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0) -> None: ...
    def is_mounted(self, path: Path) -> bool: ...


class LinuxMountCalls:
    """The kernel's mount calls (runtime.linux.libc)."""

    mount = staticmethod(libc.mount)
    umount2 = staticmethod(libc.umount2)
    open_tree = staticmethod(libc.open_tree)
    mount_setattr = staticmethod(libc.mount_setattr)

    @staticmethod
    def is_mounted(path: Path) -> bool:
        """Whether something is mounted at `path` (by /proc/self/mountinfo, so that a bind of
        a directory onto itself counts too)."""
        target = os.path.realpath(path)
        try:
            with open("/proc/self/mountinfo") as fh:
                return any(line.split()[4] == target for line in fh)
        except OSError:
            return False


LINUX: MountCalls = LinuxMountCalls()
