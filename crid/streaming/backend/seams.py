"""What the streaming backend needs from the rest of the daemon: two small Protocols.

`StreamTargets` answers "what do I run / attach to / connect into" from the container and pod
records; `ExecLauncher` starts a process in a container (runtime.lifecycle.Runtime is one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from runtime.api import Created, ExecRequest


@dataclass(frozen=True)
class ExecTarget:
    """A running container's full id and its OCI process (config.json `process`)."""

    container_id: str
    process: dict[str, Any]


class StreamTargets(Protocol):
    """Lookups over containers and pods. Every method raises crid.errors.NotFound for an
    unknown id and FailedPrecondition for a container that is not running / a pod not ready."""

    def exec_target(self, container_id: str) -> ExecTarget:
        """The container's process template for an exec."""

    def attach_socket(self, container_id: str) -> str:
        """Path of the monitor's attach socket of the container's main process."""

    def exit_code(self, container_id: str) -> int | None:
        """The container's recorded exit code, None while it runs."""

    def pod_netns(self, pod_id: str) -> str | None:
        """The pinned network namespace of the pod; None for a host-network pod."""


class ExecLauncher(Protocol):
    """Starts a process in a running container through the runtime's zygote."""

    def exec(self, cid: str, req: ExecRequest) -> Created:
        """Raises runtime.errors.OCIRuntimeError."""

    def release_exec(self, result: Created) -> None:
        """Removes a finished exec's exit file."""
