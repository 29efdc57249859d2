"""The steps of RunPodSandbox, each registering its undo on an ExitStack.

`create_sandbox` either returns a READY PodSandbox with every resource in place, or raises
with every step done so far undone (the caller closes nothing: the stack is unwound here).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from crid.children import mark
from crid.network.api import PodNetwork
from crid.pods import files
from crid.pods.cgroups import CGROUPFS, PodCgroups, combine, pod_cgroup_path
from crid.pods.ids import PodId
from crid.pods.infra import start_infra, stop_infra
from crid.pods.layout import PodPaths
from crid.pods.model import NODE, POD, Infra, PodSandbox, PodSpec
from crid.pods.namespaces import NamespacePinner, PinRequest
from crid.pods.network import network_request
from crid.pods.shm import mount_shm, unmount_shm
from crid.pods.state import PodState
from crid.pods.sysctl_ids import in_host_ids
from crid.pods.validate import sysctl_path


@dataclass(frozen=True)
class SetupDeps:
    pinner: NamespacePinner
    network: PodNetwork
    cgroups: PodCgroups
    run_root: Path
    shm_size: int
    cgroup_driver: str = CGROUPFS  # "cgroupfs" or "systemd": how the pod cgroup is laid out


def namespace_kinds(spec: PodSpec) -> tuple[str, ...]:
    """The namespaces the pod gets of its own (UTS follows the network: host network means
    the host's hostname, as the kubelet expects)."""
    kinds = []
    if spec.namespaces.network != NODE:
        kinds += ["net", "uts"]
    if spec.namespaces.ipc != NODE:
        kinds.append("ipc")
    if spec.userns is not None:
        kinds.append("user")
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
            sysctls=tuple((sysctl_path(k), in_host_ids(sysctl_path(k), v, spec.userns))
                          for k, v in sorted(spec.sysctls.items())),
            userns=spec.userns))
        undo.callback(deps.pinner.unpin, paths.ns_dir)
        if spec.namespaces.ipc != NODE:
            mount_shm(paths.shm, deps.shm_size)
            undo.callback(unmount_shm, paths.shm)
        # The path is recorded before the cgroup exists, so a crash in between leaves an
        # intent that names it (whatever driver a restarted daemon runs with).
        cgroup_path = pod_cgroup_path(spec.cgroup_parent, f"crid-{pod_id.value}",
                                      deps.cgroup_driver)
        paths.write_intent(cgroup=cgroup_path)
        job = _CgroupAndInfra(cgroup_path, spec, pins, paths, deps)
        undo.callback(job.undo)
        ips: tuple[str, ...] = ()
        if spec.namespaces.network != NODE and spec.attach_network:
            req = network_request(pod_id, spec, paths)
            ips = tuple(deps.network.setup(req).ips)
            undo.callback(deps.network.teardown, req)
        files.write_pod_files(paths.dir, hostname, spec.dns, ips,
                              host_hosts=spec.namespaces.network == NODE)
        cgroup, infra = job.result()
        pod = PodSandbox(id=pod_id, spec=spec, state=PodState.READY, created_at=time.time_ns(),
                         ips=ips, infra=infra, cgroup=cgroup)
        undo.pop_all()
    return pod


class _CgroupAndInfra:
    """Makes the pod cgroup and, for a shared PID namespace, the infra process in it, on a
    thread of its own while the caller sets up the network: both wait mostly on the kernel
    (cgroup_mutex across the v1 hierarchies, forks and execs, an RCU grace period on the
    first cgroup.procs write), so overlapping them takes that wait off RunPodSandbox's path.

    It records the infra pid in the pod's intent as soon as it exists (the caller wrote the
    cgroup's path before, and writes no intent meanwhile: `write_intent` is a
    read-modify-write).
    """

    def __init__(self, path: str, spec: PodSpec, pins: dict[str, str], paths: PodPaths,
                 deps: SetupDeps) -> None:
        self._args = (path, spec, pins, paths, deps)
        self.cgroup: str | None = None
        self.infra: Infra | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pod-cgroup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        path, spec, pins, paths, deps = self._args
        try:
            deps.cgroups.create(path, combine(spec.overhead, spec.resources))
            self.cgroup = path
            if spec.namespaces.pid == POD:
                self.infra = start_infra(pins, mark(deps.run_root, paths.dir.name))
                paths.write_intent(infra_pid=self.infra.pid,
                                   infra_start=self.infra.start_time)
                deps.cgroups.add_process(self.cgroup, self.infra.pid)
        except BaseException as e:  # handed to the caller's thread by result()
            self._error = e

    def result(self) -> tuple[str, Infra | None]:
        """Waits; the cgroup's path and the infra process. Raises what the thread raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self.cgroup is not None
        return self.cgroup, self.infra

    def undo(self) -> None:
        """Waits, then removes whatever the thread made (infra first: it sits in the cgroup)."""
        self._thread.join()
        deps = self._args[4]
        if self.infra is not None:
            stop_infra(self.infra)
        if self.cgroup is not None:
            deps.cgroups.destroy(self.cgroup)


def _remove_dir(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink(missing_ok=True)
    path.rmdir()
