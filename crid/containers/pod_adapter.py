"""PodLookup over the PodManager: what a container needs from its pod sandbox."""

from __future__ import annotations

import os

from crid.containers.model import NsMode, UserNs
from crid.containers.seams import PodForContainers
from crid.containers.spec import PodContext
from crid.errors import FailedPrecondition
from crid.pods import PodManager, PodState
from crid.pods.model import NODE, POD, UserNamespace


class PodManagerLookup:
    """`container_context(pod_id)` for the container manager.

    Raises:
        NotFound: no such pod; FailedPrecondition: the pod is not READY.
    """

    def __init__(self, pods: PodManager) -> None:
        self._pods = pods

    def container_context(self, pod_id: str) -> PodForContainers:
        pod = self._pods.status(pod_id)
        if pod.state is not PodState.READY:
            raise FailedPrecondition(f"pod sandbox {pod.id.value} is not ready "
                                     f"({pod.state.value}): cannot add containers to it")
        paths = self._pods.paths(pod)
        ns = self._pods.namespace_paths(pod)
        spec, md = pod.spec, pod.spec.metadata
        opts = spec.namespaces
        shared_pid = opts.pid == POD and pod.infra is not None
        ctx = PodContext(
            pod_id=pod.id.value, name=md.name, namespace=md.namespace, uid=md.uid,
            hostname=os.uname().nodename if opts.network == NODE else spec.hostname,
            netns_path=ns.get("net", ""), ipcns_path=ns.get("ipc", ""),
            utsns_path=ns.get("uts", ""), userns_path=ns.get("user", ""),
            userns_root=(spec.userns.uids[0].host_id, spec.userns.gids[0].host_id)
            if spec.userns else (0, 0),
            pidns_path=f"/proc/{pod.infra.pid}/ns/pid" if shared_pid and pod.infra else "",
            resolv_conf=str(paths.dir / "resolv.conf"), hosts=str(paths.dir / "hosts"),
            hostname_file=str(paths.dir / "hostname"),
            shm=str(paths.shm) if opts.ipc != NODE else "/dev/shm")
        return PodForContainers(context=ctx, cgroup_parent=pod.cgroup,
                                log_directory=spec.log_directory,
                                host_network=opts.network == NODE, host_ipc=opts.ipc == NODE,
                                host_pid=opts.pid == NODE, shared_pid=shared_pid,
                                userns=_userns(spec.userns))

    def pod_ids(self) -> set[str]:
        return {p.id.value for p in self._pods.list_pods()}


def _userns(u: UserNamespace | None) -> UserNs:
    if u is None:
        return UserNs()
    return UserNs(NsMode[u.mode],
                  tuple((m.container_id, m.host_id, m.length) for m in u.uids),
                  tuple((m.container_id, m.host_id, m.length) for m in u.gids))
