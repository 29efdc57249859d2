"""Stopping and removing a pod's resources: every step idempotent, so stop and remove can run
any number of times, before or after a daemon restart, and on the leftovers of a crash."""

from __future__ import annotations

from crid.pods.infra import stop_infra
from crid.pods.layout import PodPaths
from crid.pods.model import Infra, PodSandbox
from crid.pods.network import Attachment
from crid.pods.setup import SetupDeps, _remove_dir, attachment
from crid.pods.shm import unmount_shm


def stop_sandbox(pod: PodSandbox, deps: SetupDeps) -> None:
    """Ends the pod's processes and releases its network (the CRI's StopPodSandbox)."""
    if pod.infra is not None:
        stop_infra(pod.infra)
    if not pod.spec.host_network:
        paths = PodPaths.of(deps.run_root, pod.id.value)
        deps.network.detach(attachment(pod.id, pod.spec, paths))


def remove_sandbox(pod: PodSandbox, deps: SetupDeps) -> None:
    """Releases everything left after stop: pins, /dev/shm, cgroup, files."""
    stop_sandbox(pod, deps)
    paths = PodPaths.of(deps.run_root, pod.id.value)
    _release_local(paths, pod.cgroup, deps)


def remove_leftovers(paths: PodPaths, deps: SetupDeps) -> None:
    """Undoes a RunPodSandbox that crashed before committing its record, from its intent."""
    intent = paths.read_intent()
    if "infra_pid" in intent:
        stop_infra(Infra(intent["infra_pid"], intent["infra_start"]))
    deps.network.detach(attachment_for_leftover(paths))
    cgroup = intent.get("cgroup", "")
    if not cgroup and "cgroup_name" in intent:
        parent = (intent.get("cgroup_parent") or "/crid").rstrip("/")
        cgroup = f"{parent}/{intent['cgroup_name']}".lstrip("/")
    _release_local(paths, cgroup, deps)


def attachment_for_leftover(paths: PodPaths) -> Attachment:
    return Attachment(pod_id=paths.dir.name, netns_path=str(paths.ns("net")))


def _release_local(paths: PodPaths, cgroup: str, deps: SetupDeps) -> None:
    deps.pinner.unpin(paths.ns_dir)
    unmount_shm(paths.shm)
    if cgroup:
        deps.cgroups.destroy(cgroup)
    if paths.dir.exists():
        _remove_dir(paths.dir)
