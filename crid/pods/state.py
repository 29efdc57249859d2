"""The pod sandbox state machine, as data: which transition each state allows."""

from __future__ import annotations

import enum


class PodState(enum.Enum):
    """READY: namespaces pinned and networked. NOTREADY: stopped, or its pins are gone."""

    READY = "READY"
    NOTREADY = "NOTREADY"

    def can(self, action: str) -> bool:
        """Whether `action` ("stop", "remove", "update") is allowed in this state."""
        return action in _ALLOWED[self]

    @property
    def next_on_stop(self) -> PodState:
        return PodState.NOTREADY


# Stop and remove are allowed in every state (both are idempotent, per the CRI comments);
# resource updates only make sense while the pod's cgroup and namespaces exist.
_ALLOWED: dict[PodState, frozenset[str]] = {
    PodState.READY: frozenset({"stop", "remove", "update"}),
    PodState.NOTREADY: frozenset({"stop", "remove"}),
}
