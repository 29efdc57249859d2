"""StreamTargets over the daemon's container manager, embedded runtime and pod manager."""

from __future__ import annotations

from crid.containers.manager import ContainerManager
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.runtime_adapter import EmbeddedRuntime
from crid.containers.runtime_errors import runtime_errors
from crid.errors import FailedPrecondition
from crid.pods import PodManager, PodSandbox, PodState
from crid.streaming.backend.seams import ExecTarget


class DaemonTargets:
    """Answers the streaming backend's lookups; raises NotFound / FailedPrecondition."""

    def __init__(self, containers: ContainerManager, runtime: EmbeddedRuntime,
                 pods: PodManager) -> None:
        self._containers, self._runtime, self._pods = containers, runtime, pods

    def running_id(self, container_id: str, what: str) -> str:
        """The full id of a running container (container_id may be a unique prefix).

        Raises:
            NotFound: no such container. FailedPrecondition: it is not running.
        """
        return self.running(container_id, what).id

    def running(self, container_id: str, what: str) -> ContainerRecord:
        """The record of a running container.

        Raises:
            NotFound: no such container. FailedPrecondition: it is not running.
        """
        rec = self._containers.get(container_id)
        if rec.state is not ContainerState.RUNNING:
            raise FailedPrecondition(f"cannot {what} container {rec.id}: it is "
                                     f"{rec.state.name.lower()}, not running")
        return rec

    def exec_target(self, container_id: str) -> ExecTarget:
        rec = self.running(container_id, "exec in")
        return ExecTarget(rec.id, self._containers.exec_process(rec.id))

    def attach_socket(self, container_id: str) -> str:
        rec = self.running(container_id, "attach to")
        with runtime_errors(f"attach to container {rec.id}"):
            state = self._runtime.rt.store.load(rec.id)
        if state is None or not state.attach_socket:
            raise FailedPrecondition(f"attach to container {rec.id}: it has no monitor socket")
        return state.attach_socket

    def exit_code(self, container_id: str) -> int | None:
        info = self._runtime.exit_status(self._containers.get(container_id).id)
        return info.exit_code if info is not None else None

    def pod_netns(self, pod_id: str) -> str | None:
        pod = self._ready_pod(pod_id)
        return self._pods.namespace_paths(pod).get("net")

    def ready_pod_id(self, pod_id: str) -> str:
        """The full id of a ready pod sandbox (pod_id may be a unique prefix).

        Raises:
            NotFound: no such pod. FailedPrecondition: it is not ready.
        """
        return self._ready_pod(pod_id).id.value

    def _ready_pod(self, pod_id: str) -> PodSandbox:
        pod = self._pods.status(pod_id)
        if pod.state is not PodState.READY:
            raise FailedPrecondition(f"cannot forward ports of pod {pod.id.value}: it is "
                                     f"{pod.state.value}, not ready")
        return pod
