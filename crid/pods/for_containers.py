"""What a container takes from its pod: the containers package's PodLookup, served by pods."""

from __future__ import annotations

from crid.containers.ports import PodForContainers
from crid.containers.spec import PodContext
from crid.errors import FailedPrecondition
from crid.pods.manager import PodManager
from crid.pods.model import NODE, POD
from crid.pods.state import PodState


class PodLookupAdapter:
    """`crid.containers.ports.PodLookup` over a PodManager."""

    def __init__(self, pods: PodManager) -> None:
        self._pods = pods

    def container_context(self, pod_id: str) -> PodForContainers:
        """Namespaces, files and cgroup parent for a container of pod_id.

        Raises:
            NotFound: unknown pod. FailedPrecondition: the pod is not READY.
        """
        pod = self._pods.status(pod_id)
        if pod.state != PodState.READY:
            raise FailedPrecondition(f"pod sandbox {pod.id.short} is {pod.state.value}: "
                                     "containers need a ready pod")
        ns = self._pods.namespace_paths(pod)
        paths = self._pods.paths(pod)
        md = pod.spec.metadata
        pidns = f"/proc/{pod.infra.pid}/ns/pid" if pod.infra and \
            pod.spec.namespaces.pid == POD else ""
        ctx = PodContext(
            pod_id=pod.id.value, name=md.name, namespace=md.namespace, uid=md.uid,
            hostname=pod.spec.hostname, netns_path=ns.get("net", ""),
            ipcns_path=ns.get("ipc", ""), utsns_path=ns.get("uts", ""), pidns_path=pidns,
            resolv_conf=str(paths.dir / "resolv.conf"), hosts=str(paths.dir / "hosts"),
            hostname_file=str(paths.dir / "hostname"),
            shm=str(paths.shm) if pod.spec.namespaces.ipc != NODE else "/dev/shm")
        return PodForContainers(context=ctx, cgroup_parent=pod.spec.cgroup_parent,
                                log_directory=pod.spec.log_directory)
