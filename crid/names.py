"""Name reservations for pods and containers, as CRI-O keeps them.

A name (pod: name/namespace/uid/attempt; container: name/pod/attempt) belongs to one id at a
time; a second create with the same name is refused naming the holder, so the kubelet can
remove it.
"""

from __future__ import annotations

import threading

from crid.errors import AlreadyExists


class NameRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, str] = {}
        self._by_id: dict[str, str] = {}
        self._lock = threading.Lock()

    def reserve(self, name: str, holder: str) -> None:
        """Reserves name for holder (idempotent for the same holder).

        Raises:
            AlreadyExists: another id holds the name; the message names it.
        """
        with self._lock:
            current = self._by_name.get(name)
            if current is not None and current != holder:
                raise AlreadyExists(f"name {name!r} is reserved for {current}")
            self._by_name[name] = holder
            self._by_id[holder] = name

    def holder(self, name: str) -> str | None:
        with self._lock:
            return self._by_name.get(name)

    def release(self, holder: str) -> None:
        with self._lock:
            name = self._by_id.pop(holder, None)
            if name is not None and self._by_name.get(name) == holder:
                del self._by_name[name]
