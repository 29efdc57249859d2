"""Container events fanned out to every subscriber, never blocking the daemon.

Each subscriber has a bounded queue. A subscriber that falls that far behind is dropped with an
error (its stream ends with RESOURCE_EXHAUSTED) instead of slowing the publishers or losing
events silently.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crid.errors import ResourceExhausted

QUEUE_LIMIT = 4096
_CLOSED = object()


@dataclass(frozen=True)
class ContainerEvent:
    container_id: str
    kind: str  # CREATED, STARTED, STOPPED, DELETED
    created_at: int
    pod_id: str
    payload: Any = None  # statuses attached by the publisher


class Subscription:
    def __init__(self, bus: EventBus, limit: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=limit)
        self.overflowed = False

    def offer(self, event: ContainerEvent) -> bool:
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            self.overflowed = True
            return False

    def events(self, poll: float = 0.5, alive: Any = lambda: True) -> Iterator[ContainerEvent]:
        """Yields events until closed or `alive()` turns false.

        Raises:
            ResourceExhausted: this subscriber fell QUEUE_LIMIT events behind.
        """
        try:
            while alive():
                try:
                    item = self._queue.get(timeout=poll)
                except queue.Empty:
                    continue
                if item is _CLOSED:
                    if self.overflowed:
                        raise ResourceExhausted("event subscriber fell too far behind; "
                                                "subscribe again and re-list")
                    return
                yield item
        finally:
            self._bus.unsubscribe(self)

    def close(self) -> None:
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass


class EventBus:
    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._limit = limit
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._limit)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event: ContainerEvent) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if not sub.offer(event):
                self.unsubscribe(sub)
                sub.close()

    def close(self) -> None:
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.close()
