"""One name reservation and hand-off store for pods and containers, as CRI-O's ResourceStore.

A name (pod: name/namespace/uid/attempt; container: name/pod/attempt) belongs to one holder at a
time. A second create of a reserved name waits for a create still in flight and then:
- gets that create's result if it finished after its own caller had gone (the kubelet's retry
  after an RPC deadline: handed back once, instead of "name is reserved" forever);
- makes its own attempt if that create failed (the name is free again);
- is refused with AlreadyExists naming the holder otherwise, so the kubelet can remove it.
A finished create nobody claims within `stale_after` seconds is no longer handed back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from crid.errors import AlreadyExists

H = TypeVar("H")


@dataclass
class Reservation(Generic[H]):
    holder: H
    done: threading.Event = field(default_factory=threading.Event)
    succeeded: bool = False
    abandoned_at: float | None = None  # when a create whose caller had gone finished


class ReservationStore(Generic[H]):
    """Thread-safe map of reserved names to their holders."""

    def __init__(self, stale_after: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._held: dict[Hashable, Reservation[H]] = {}
        self._stale_after, self._clock = stale_after, clock

    def reserve(self, name: Hashable, new_holder: Callable[[], H],
                wait: float) -> tuple[Reservation[H], bool]:
        """(a new reservation, True) for a create to make; or (the holder's, False) for a
        create that outlived its caller, handed back once. Waits up to `wait` seconds for a
        holder still being created.

        Raises:
            AlreadyExists: the name is held (the message names the holder).
        """
        deadline = self._clock() + wait
        while True:
            with self._lock:
                holder = self._held.get(name)
                if holder is None:
                    mine: Reservation[H] = Reservation(new_holder())
                    self._held[name] = mine
                    return mine, True
            holder.done.wait(max(0.0, deadline - self._clock()))
            with self._lock:
                if not holder.done.is_set() or self._held.get(name) is holder:
                    if self._claim(holder):
                        return holder, False
                    state = "being created" if not holder.done.is_set() else "in use"
                    raise AlreadyExists(f"name {name!r} is reserved by {holder.holder} "
                                        f"({state})")
            # the create we waited for failed and freed the name: try to take it

    def _claim(self, holder: Reservation[H]) -> bool:
        if not (holder.done.is_set() and holder.succeeded and holder.abandoned_at is not None):
            return False
        fresh = self._clock() - holder.abandoned_at < self._stale_after
        holder.abandoned_at = None  # handed back once; a stale one is never handed back
        return fresh

    def hold(self, name: Hashable, holder: H) -> None:
        """Records an existing object's name (on daemon start)."""
        res = Reservation(holder, succeeded=True)
        res.done.set()
        with self._lock:
            self._held[name] = res

    def finish(self, name: Hashable, res: Reservation[H], ok: bool, abandoned: bool) -> None:
        """Ends a create: success keeps the name (to hand back if `abandoned`: its caller had
        gone); failure frees it."""
        with self._lock:
            res.succeeded = ok
            res.abandoned_at = self._clock() if ok and abandoned else None
            if not ok and self._held.get(name) is res:
                del self._held[name]
        res.done.set()

    def release(self, name: Hashable, holder: H) -> None:
        """Frees the name if `holder` still holds it (the object was removed)."""
        with self._lock:
            held = self._held.get(name)
            if held is not None and held.holder == holder:
                del self._held[name]
