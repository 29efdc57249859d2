"""JSON state files (written through ``runtime.linux.atomic``) and a cross-process lock for the
network's state directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.linux.atomic import fsync_dir, write_atomic


def write_json_atomic(path: str, data: Any, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as JSON so a crash leaves the old or the new file.

    ``durable=False`` skips the fsyncs (temp file + rename only): other processes see the
    new file at once, and the caller either calls ``make_durable`` later, outside its lock,
    or does not need the file to survive a power loss (hints)."""
    write_atomic(path, json.dumps(data, sort_keys=True).encode(), 0o600, durable=durable)


def make_durable(path: str) -> None:
    """fsync a file written with ``durable=False`` and its directory; a file already
    removed again is fine. Raises OSError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(Path(path).parent)


def read_json(path: str) -> Any | None:
    """The parsed file, or None when it does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class DirLock:
    """Mutual exclusion across threads and processes on one state directory, with a
    generation token for caches of what the lock guards.

    flock(2) locks belong to an open file description, so each acquisition opens the lock file
    anew: two threads of one process then exclude each other just as two processes do. The
    thread lock in front only saves threads from queueing in the kernel.

    The lock file holds a random token that a holder replaces before it first changes the
    guarded state (before, so a holder killed halfway still leaves a new token), so a holder
    whose cache was built under the token it now reads knows nobody else (thread, process,
    other instance) has changed anything since. The token needs no fsync: after a reboot
    every cache is gone anyway.
    """

    TOKEN_BYTES = 16

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._owner: int | None = None
        self._token = b""
        self._fd = -1

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._token = os.pread(fd, self.TOKEN_BYTES, 0)
                self._fd, self._owner = fd, threading.get_ident()
                try:
                    yield
                finally:
                    self._fd, self._owner = -1, None
            finally:
                os.close(fd)  # closing drops the flock

    def held_by_me(self) -> bool:
        return self._owner == threading.get_ident()

    def token(self) -> bytes:
        """The current token (call while holding the lock)."""
        return self._token

    def mark_changing(self) -> None:
        """Call while holding the lock, before changing the guarded state: every cache
        built under an older token becomes stale. Raises OSError."""
        self._token = os.urandom(self.TOKEN_BYTES)
        os.pwrite(self._fd, self._token, 0)
