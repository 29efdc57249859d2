"""JSON state files (written through ``crid.store.atomic``) and a cross-process lock for the
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

from crid.store.atomic import atomic_write


def write_json_atomic(path: str, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON so a crash leaves the old or the new file."""
    atomic_write(Path(path), json.dumps(data, sort_keys=True).encode(), mode=0o600)


def read_json(path: str) -> Any | None:
    """The parsed file, or None when it does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class DirLock:
    """Mutual exclusion across threads and processes on one state directory.

    flock(2) locks belong to an open file description, so each acquisition opens the lock file
    anew: two threads of one process then exclude each other just as two processes do. The
    thread lock in front only saves threads from queueing in the kernel.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing drops the flock
