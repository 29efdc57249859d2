"""Learning promptly that containers exited, without polling each one.

Monitors write exit files atomically (temp name starting with a dot, then rename). Put every
container's exit file in one directory and watch it: ``ExitWatcher.read`` returns the names that
appeared since the last call (inotify IN_MOVED_TO / IN_CLOSE_WRITE), so crid can mark containers
EXITED within milliseconds from one thread.
"""

from __future__ import annotations

import os
import select
import struct
import time

from runtime import libc

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
_MASK = libc.IN_MOVED_TO | libc.IN_CLOSE_WRITE


class ExitWatcher:
    """Watches one directory for finished exit files.

    ``read(timeout)`` returns the file names completed since the previous call (possibly empty
    on timeout). On an event-queue overflow it returns every name currently present, so no exit
    is ever missed. Raises OSError if the directory cannot be watched.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._fd = libc.inotify_init1()
        try:
            libc.inotify_add_watch(self._fd, directory, _MASK)
        except OSError:
            os.close(self._fd)
            raise

    def fileno(self) -> int:
        return self._fd

    def read(self, timeout: float | None = None) -> list[str]:
        if not select.select([self._fd], [], [], timeout)[0]:
            return []
        names: list[str] = []
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return []
        offset = 0
        while offset < len(data):
            _, mask, _, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
            offset += _EVENT.size + length
            if mask & libc.IN_Q_OVERFLOW:
                return self.existing()
            name = raw.rstrip(b"\0").decode(errors="surrogateescape")
            if name and not name.startswith(".") and name not in names:
                names.append(name)
        return names

    def existing(self) -> list[str]:
        """Every finished exit file now in the directory (for start-up reconciliation)."""
        return sorted(n for n in os.listdir(self.directory) if not n.startswith("."))

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ExitWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_file(path: str, timeout: float | None = None) -> bool:
    """Block until ``path`` exists (written by rename or close). False on timeout."""
    directory, name = os.path.split(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    with ExitWatcher(directory or ".") as watcher:
        while not os.path.exists(path):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if name in watcher.read(left):
                return True
    return True
