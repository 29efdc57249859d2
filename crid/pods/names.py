"""Pod name reservation: one sandbox per (name, namespace, uid, attempt).

A second RunPodSandbox for a reserved name is refused with the holder's id, as CRI-O does —
except the kubelet's retry of a create that outlived its RPC deadline: that create is handed
back to the retry once it finishes (CRI-O's ResourceStore), instead of "name reserved" forever.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from crid.errors import AlreadyExists
from crid.pods.ids import PodId
from crid.pods.model import Metadata


@dataclass
class Reservation:
    pod_id: PodId
    done: threading.Event = field(default_factory=threading.Event)
    succeeded: bool = False
    abandoned: bool = False  # the creating RPC's caller had gone when it finished


class NameRegistry:
    """Thread-safe map of reserved pod names to their holders."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Metadata, Reservation] = {}

    def reserve(self, md: Metadata, wait: float) -> tuple[Reservation, bool]:
        """Reserves md for a new pod; or returns (holder, False) for a create to hand back.

        Waits up to `wait` seconds for a holder still being created.

        Raises:
            AlreadyExists: the name is held by another live sandbox (message has its id).
        """
        with self._lock:
            holder = self._held.get(md)
            if holder is None:
                mine = Reservation(PodId.new())
                self._held[md] = mine
                return mine, True
        holder.done.wait(wait)
        with self._lock:
            if holder.done.is_set() and holder.succeeded and holder.abandoned:
                holder.abandoned = False  # handed back once
                return holder, False
        state = "being created" if not holder.done.is_set() else "in use"
        raise AlreadyExists(f"pod sandbox name {md.reservation!r} is reserved by "
                            f"{holder.pod_id} ({state})")

    def hold(self, md: Metadata, pod_id: PodId) -> None:
        """Records an existing sandbox's name (on daemon start)."""
        res = Reservation(pod_id, succeeded=True)
        res.done.set()
        with self._lock:
            self._held[md] = res

    def finish(self, md: Metadata, res: Reservation, ok: bool, abandoned: bool) -> None:
        """Ends a create: success keeps the name; failure frees it."""
        with self._lock:
            res.succeeded, res.abandoned = ok, ok and abandoned
            if not ok and self._held.get(md) is res:
                del self._held[md]
        res.done.set()

    def release(self, md: Metadata, pod_id: PodId) -> None:
        with self._lock:
            held = self._held.get(md)
            if held is not None and held.pod_id == pod_id:
                del self._held[md]
