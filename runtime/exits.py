"""Learning promptly that containers exited, without polling each one.

Monitors write exit files atomically (temp name starting with a dot, then rename). Put every
container's exit file in one directory and watch it: ``ExitWatcher.read`` returns the names that
appeared since the last call (inotify IN_MOVED_TO / IN_CLOSE_WRITE), so crid can mark containers
EXITED within milliseconds from one thread.
"""

from __future__ import annotations

import _thread
import os
import select
import struct
import time

from runtime.linux import libc

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
        """Names completed since the last call; waits up to ``timeout`` (None: forever) for at
        least one, ignoring events on temporary (dot) files meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            names = self._read_once(left)
            if names or (deadline is not None and time.monotonic() >= deadline):
                return names

    def _read_once(self, timeout: float | None) -> list[str]:
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


class _SharedWatch:
    """One inotify instance for every ``wait_for_file`` in the process, never closed.

    Why: closing an inotify fd waits for an SRCU grace period (milliseconds); a fresh
    instance per wait made every container wait and delete that much slower. Watches are
    added per directory (the kernel reuses the watch of a directory already watched).

    One waiter at a time reads the fd (the reader); the others sleep on a lock of their own.
    After each read, and when it leaves, the reader wakes every other waiter: each checks
    its file again and one of them becomes the next reader. An event read by one thread is
    thus never lost to the thread it was for, and nobody wakes on a timer.
    """

    def __init__(self) -> None:
        self._fd = -1
        self._lock = _thread.allocate_lock()  # importing threading would cost the CLI
        self._reading = False
        self._sleepers: set[_thread.LockType] = set()

    def _fileno(self, directory: str) -> int:
        with self._lock:
            if self._fd < 0:
                self._fd = libc.inotify_init1()
            libc.inotify_add_watch(self._fd, directory, _MASK)
            return self._fd

    def wait(self, path: str, timeout: float | None) -> bool:
        fd = self._fileno(os.path.dirname(path) or ".")
        deadline = None if timeout is None else time.monotonic() + timeout
        wake = _thread.allocate_lock()
        wake.acquire()  # released by a reader: a wake that comes early is kept, not lost
        with self._lock:
            self._sleepers.add(wake)
        try:
            while not os.path.exists(path):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if self._become_reader():
                    self._read(fd, left, wake)
                else:
                    wake.acquire(True, -1 if left is None else left)
            return True
        finally:
            with self._lock:
                self._sleepers.discard(wake)

    def _become_reader(self) -> bool:
        with self._lock:
            if self._reading:
                return False
            self._reading = True
            return True

    def _read(self, fd: int, timeout: float | None, me: _thread.LockType) -> None:
        try:
            if select.select([fd], [], [], timeout)[0]:
                try:
                    os.read(fd, 65536)
                except BlockingIOError:
                    pass
        finally:
            with self._lock:
                self._reading = False
                for other in self._sleepers - {me}:
                    if other.locked():
                        other.release()


_shared = _SharedWatch()


def wait_for_file(path: str, timeout: float | None = None) -> bool:
    """Block until ``path`` exists (written by rename or close). False on timeout.

    Raises OSError if the directory cannot be watched (e.g. it does not exist)."""
    return _shared.wait(path, timeout)


def wait_exit(pid: int, start: int, timeout: float) -> bool:
    """Block until the process ``pid`` that started at ``start`` (clock ticks, as
    ``state.process_start_time`` reads it) has exited: woken by its pidfd, not polled. A
    zombie counts as exited. False on timeout."""
    from runtime.state import is_alive

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        # Checked once the pidfd is held: the pid cannot be reused for another process now.
        if not is_alive(pid, start):
            return True
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)
