"""What the container manager needs from the runtime, the image store and the pods."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from crid.containers.model import UserNs
from crid.containers.spec import PodContext
from runtime.api import Config


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int
    oom_killed: bool = False
    finished_at: int = 0  # ns since the epoch
    message: str = ""


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


@dataclass(frozen=True)
class PodForContainers:
    """What a container takes from its pod: namespaces and files (context), the pod cgroup
    (relative path, "" for none), the log directory, and which namespaces are the host's."""

    context: PodContext
    cgroup_parent: str
    log_directory: str
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    shared_pid: bool = False  # the pod has one PID namespace (context.pidns_path)
    userns: UserNs = UserNs()  # the pod's user namespace, as its RunPodSandbox asked it


class ContainerRuntime(Protocol):
    def create(self, cid: str, bundle: Path, config: Config, log_path: str, stdin: bool,
               stdin_once: bool, tty: bool) -> int:
        """Creates the container of ``config`` (validated once, by the caller, and handed down
        as such; the bundle holds it as config.json for OCI tools); its process waits for
        start. Returns its host pid."""
        ...
    def start(self, cid: str) -> None: ...
    def kill(self, cid: str, sig: int) -> None: ...
    def wait(self, cid: str, timeout: float) -> ExitInfo | None: ...
    def exit_status(self, cid: str) -> ExitInfo | None: ...
    def is_running(self, cid: str) -> bool: ...
    def delete(self, cid: str, force: bool) -> None: ...
    def update(self, cid: str, resources: dict[str, Any]) -> None: ...
    def pids(self, cid: str) -> list[int]: ...
    def reopen_log(self, cid: str) -> None: ...
    def exec_sync(self, cid: str, process: dict[str, Any], timeout: float) -> ExecResult: ...


class ImageLookup(Protocol):
    def status(self, name_or_id: str) -> Any: ...
    def config(self, image_id: str) -> dict[str, Any]: ...
    def layer_dirs(self, image_id: str) -> list[Path]: ...


class PodLookup(Protocol):
    def container_context(self, pod_id: str) -> PodForContainers:
        """Raises NotFound for an unknown pod and FailedPrecondition for one not ready."""
        ...
