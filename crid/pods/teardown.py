"""Stopping and removing a pod's resources: every step idempotent, so stop and remove can run
any number of times, before or after a daemon restart, and on the leftovers of a crash."""

from __future__ import annotations

from crid.pods.cgroups import pod_cgroup_path
from crid.pods.infra import stop_infra
from crid.pods.layout import PodPaths
from crid.pods.model import Infra, PodSandbox
from crid.pods.network import leftover_request, network_request
from crid.pods.setup import SetupDeps, _remove_dir
from crid.pods.shm import unmount_shm


def stop_sandbox(pod: PodSandbox, deps: SetupDeps) -> None:
    """Ends the pod's processes and releases its network (the CRI's StopPodSandbox)."""
    if pod.infra is not None:
        stop_infra(pod.infra)
    if not pod.spec.host_network and pod.spec.attach_network:
        paths = PodPaths.of(deps.run_root, pod.id.value)
        deps.network.teardown(network_request(pod.id, pod.spec, paths))


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
    deps.network.teardown(leftover_request(paths))
    cgroup = intent.get("cgroup", "")
    if not cgroup and "cgroup_name" in intent:  # an intent from before paths were recorded
        cgroup = pod_cgroup_path(intent.get("cgroup_parent", ""), intent["cgroup_name"])
    _release_local(paths, cgroup, deps)


def _release_local(paths: PodPaths, cgroup: str, deps: SetupDeps) -> None:
    deps.pinner.unpin(paths.ns_dir)
    unmount_shm(paths.shm)
    if cgroup:
        deps.cgroups.destroy(cgroup)
    if paths.dir.exists():
        _remove_dir(paths.dir)
