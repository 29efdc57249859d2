"""A container's persisted record and its state machine."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from crid.errors import FailedPrecondition


class ContainerState(Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"

    def can_start(self) -> bool:
        return self is ContainerState.CREATED

    def can_exec(self) -> bool:
        return self is ContainerState.RUNNING


_NEXT = {
    ContainerState.CREATED: {ContainerState.RUNNING, ContainerState.EXITED},
    ContainerState.RUNNING: {ContainerState.EXITED},
    ContainerState.EXITED: set(),
    ContainerState.UNKNOWN: {ContainerState.EXITED},
}


@dataclass(frozen=True)
class ContainerRecord:
    """Everything ContainerStatus reports, persisted in the metadata store (kind "container")."""

    id: str
    pod_id: str
    name: str
    attempt: int
    image: str  # the image as the request named it
    image_id: str  # sha256:<config digest>
    image_ref: str  # the repo digest, or the id when the image has none
    state: ContainerState = ContainerState.CREATED
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    bundle: str = ""
    rootfs: str = ""
    stop_signal: str = "SIGTERM"
    mounts: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    pid: int = 0
    cgroups_path: str = ""
    run_as_username: str = ""

    def moved_to(self, state: ContainerState, **changes: Any) -> ContainerRecord:
        """The record in `state`; raises FailedPrecondition for a transition the machine lacks."""
        if state is not self.state and state not in _NEXT[self.state]:
            raise FailedPrecondition(f"container {self.id} is {self.state.name.lower()}, "
                                     f"cannot become {state.name.lower()}")
        return dataclasses.replace(self, state=state, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["state"] = self.state.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["state"] = ContainerState(d["state"])
        return cls(**d)
