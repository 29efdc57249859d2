"""A recording fake of runtime.linux.syscalls.MountCalls: a mount table in memory, every call
recorded in order, and any call made to fail with the errno a test names (every call of a
name: `fail`; the calls a test picks by their arguments: `refuse`)."""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RecordingMountCalls:
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    table: dict[str, list[tuple[str | None, str | None]]] = field(
        default_factory=lambda: defaultdict(list))  # target -> stacked (fstype, data)
    fail: dict[str, int] = field(default_factory=dict)  # call name -> errno to raise
    open_fds: list[int] = field(default_factory=list)
    # (call name, its args) -> errno to raise, or None to let it through
    refuse: Callable[[str, tuple[object, ...]], int | None] | None = None

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        code = self.fail.get(name) or (self.refuse(name, args) if self.refuse else None)
        if code:
            raise OSError(code, f"{name}: {os.strerror(code)}")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int = 0,
              data: str | None = None) -> None:
        self._record("mount", source, target, fstype, flags, data)
        self.table[os.path.realpath(target)].append((fstype, data))

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flags)
        stack = self.table.get(os.path.realpath(target))
        if not stack:
            raise OSError(errno.EINVAL, "not mounted")
        stack.pop()

    def open_tree(self, dirfd: int, path: str, flags: int) -> int:
        self._record("open_tree", dirfd, path, flags)
        fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # a real fd: callers close it
        self.open_fds.append(fd)
        return fd

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int = 0,
                      attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0) -> None:
        self._record("mount_setattr", dirfd, path, flags, attr_set, userns_fd)

    def is_mounted(self, path: Path) -> bool:
        return bool(self.table.get(os.path.realpath(path)))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [args for n, args in self.calls if n == name]
