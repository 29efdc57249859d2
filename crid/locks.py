"""One lock per object id: operations on one pod or container run one at a time.

Locks are made on first use and dropped once no thread holds or waits for them, so a removed
object leaves no lock behind and ids never reused need no cleanup.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # threads holding or waiting for the lock


class KeyedLocks:
    """Mutual exclusion per key (not reentrant: an operation must not call another that
    takes the same key's lock)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Holds key's lock for the duration of the block."""
        with self._guard:
            entry = self._entries.setdefault(key, _Entry())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[key]

    def __len__(self) -> int:
        """Keys with a holder or waiter now."""
        with self._guard:
            return len(self._entries)
