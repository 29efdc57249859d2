"""The steps of RunPodSandbox, each registering its undo on an ExitStack.

`create_sandbox` either returns a READY PodSandbox with every resource in place, or raises
with every step done so far undone (the caller closes nothing: the stack is unwound here).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from crid.pods import files
from crid.pods.cgroups import PodCgroups, combine
from crid.pods.ids import PodId
from crid.pods.infra import start_infra, stop_infra
from crid.pods.layout import PodPaths
from crid.pods.model import NODE, POD, PodSandbox, PodSpec
from crid.pods.namespaces import NamespacePinner, PinRequest
from crid.pods.network import Attachment, PodNetworkPort
from crid.pods.shm import mount_shm, unmount_shm
from crid.pods.state import PodState
from crid.pods.validate import sysctl_path


@dataclass(frozen=True)
class SetupDeps:
    pinner: NamespacePinner
    network: PodNetworkPort
    cgroups: PodCgroups
    run_root: Path
    shm_size: int


def attachment(pod_id: PodId, spec: PodSpec, paths: PodPaths) -> Attachment:
    md = spec.metadata
    return Attachment(pod_id=pod_id.value, netns_path=str(paths.ns("net")), name=md.name,
                      namespace=md.namespace, uid=md.uid, hostname=spec.hostname,
                      port_mappings=spec.port_mappings, dns=spec.dns)


def namespace_kinds(spec: PodSpec) -> tuple[str, ...]:
    """The namespaces the pod gets of its own (UTS follows the network: host network means
    the host's hostname, as the kubelet expects)."""
    kinds = []
    if spec.namespaces.network != NODE:
        kinds += ["net", "uts"]
    if spec.namespaces.ipc != NODE:
        kinds.append("ipc")
    return tuple(kinds)


def create_sandbox(pod_id: PodId, spec: PodSpec, deps: SetupDeps) -> PodSandbox:
    """Creates everything the pod needs; all or nothing."""
    paths = PodPaths.of(deps.run_root, pod_id.value)
    with contextlib.ExitStack() as undo:
        paths.dir.mkdir(parents=True, mode=0o711)
        undo.callback(_remove_dir, paths.dir)
        hostname = spec.hostname if spec.namespaces.network != NODE else os.uname().nodename
        pins = deps.pinner.pin(PinRequest(
            paths.ns_dir, namespace_kinds(spec), hostname=hostname,
            sysctls=tuple((sysctl_path(k), v) for k, v in sorted(spec.sysctls.items()))))
        undo.callback(deps.pinner.unpin, paths.ns_dir)
        if spec.namespaces.ipc != NODE:
            mount_shm(paths.shm, deps.shm_size)
            undo.callback(unmount_shm, paths.shm)
        cgroup = f"crid-{pod_id.value}"
        paths.write_intent(cgroup_parent=spec.cgroup_parent, cgroup_name=cgroup)
        cgroup = deps.cgroups.create(spec.cgroup_parent, cgroup,
                                     combine(spec.overhead, spec.resources))
        paths.write_intent(cgroup=cgroup)
        undo.callback(deps.cgroups.destroy, cgroup)
        infra = None
        if spec.namespaces.pid == POD:
            infra = start_infra(pins)
            paths.write_intent(infra_pid=infra.pid, infra_start=infra.start_time)
            undo.callback(stop_infra, infra)
            deps.cgroups.add_process(cgroup, infra.pid)
        ips: tuple[str, ...] = ()
        if spec.namespaces.network != NODE:
            att = attachment(pod_id, spec, paths)
            ips = deps.network.attach(att)
            undo.callback(deps.network.detach, att)
        files.write_pod_files(paths.dir, hostname, spec.dns, ips,
                              host_hosts=spec.namespaces.network == NODE)
        pod = PodSandbox(id=pod_id, spec=spec, state=PodState.READY, created_at=time.time_ns(),
                         ips=ips, infra=infra, cgroup=cgroup)
        undo.pop_all()
    return pod


def _remove_dir(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink(missing_ok=True)
    path.rmdir()
