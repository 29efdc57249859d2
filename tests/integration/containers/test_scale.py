"""Teardown at scale (issue 13's Tests): many pod+container lifecycles at once leave the daemon's
memory flat and nothing behind; 50 containers across a daemon SIGKILL+restart (one killed while
no daemon runs) keep their logs and exec, and once all is stopped and removed through the CRI no
veth, overlay mount, pinned namespace or cgroup of theirs remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from crid.network.links import host_veth_name
from tests.integration.containers.helpers import (
    ContainerRig,
    container_config,
    mounts_under,
    read_log,
    wait_for,
)
from tests.integration.pods.helpers import cgroups_under
from tests.rig.daemon import start_crid
from tests.rig.leaks import leaving_a_child, processes_in_cgroups, with_arg, zombies

LIFECYCLES, PARALLEL, WARM_UP = 1000, 10, 300
RSS_GROWTH_KIB = 5 * 1024
RESTARTED = 50


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _lifecycle(rig: ContainerRig, i: int) -> str:
    """RunPodSandbox, Create+Start of the trap/sleep shell, graceful Stop, Remove, pod Stop and
    Remove, as the kubelet does for a short-lived pod; the PID mode varies as real pods do."""
    mode = (pb.CONTAINER, pb.POD)[i % 2]
    try:
        pod = rig.run_pod(namespaces=pb.NamespaceOption(pid=mode))
        rig.pods.remove(pod[0])
        command, _ = leaving_a_child()
        ns = pb.NamespaceOption(pid=mode)
        cid = rig.run(pod, container_config(command=command, linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(namespace_options=ns))))
        rig.stop(cid, timeout=10)
        rig.remove(cid)
        rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
        rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
        return ""
    except grpc.RpcError as e:
        return f"lifecycle {i}: {e.code().name}: {e.details()}"  # type: ignore[attr-defined]


def _churn(rig: ContainerRig, count: int) -> list[str]:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return [e for e in pool.map(lambda i: _lifecycle(rig, i), range(count)) if e]


def test_a_thousand_lifecycles_keep_memory_flat_and_leave_nothing(rig: ContainerRig) -> None:
    # The warm-up fills what is allocated once (gRPC's thread pool and buffers, caches, the
    # allocator's arenas; measured here: +2.4 MB over the first 300 lifecycles, then about
    # 1 KB a lifecycle, flattening); growth after it is what each lifecycle leaks.
    assert _churn(rig, WARM_UP) == []
    before = _rss_kib(rig.daemon.proc.pid)
    assert _churn(rig, LIFECYCLES) == [], rig.daemon.log()[-3000:]
    growth = _rss_kib(rig.daemon.proc.pid) - before
    print(f"daemon RSS {before} KiB after the warm-up, +{growth} KiB after {LIFECYCLES}")
    assert growth < RSS_GROWTH_KIB, f"RSS grew {growth} KiB over {LIFECYCLES} lifecycles"
    assert zombies(rig.daemon) == []
    assert cgroups_under(rig.cgroup_parent) == []
    assert processes_in_cgroups(rig.cgroup_parent) == {}
    assert mounts_under(rig.daemon.root) == mounts_under(rig.daemon.run_root) == []
    assert rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items == []


def _pid(rig: ContainerRig, cid: str) -> int:
    return int(json.loads(rig.status(cid, verbose=True).info["info"])["pid"])


def test_fifty_containers_across_a_killed_daemon_and_nothing_after(rig: ContainerRig) -> None:
    links_before = _links()
    pods, cids, logs, children = [], [], [], []
    for _ in range(RESTARTED):
        pod = rig.run_pod()
        command, child = leaving_a_child()
        command = ("/bin/sh", "-c", f"echo up; {command[2]}")
        cfg = container_config(command=command)
        cids.append(rig.run(pod, cfg))
        pods.append(pod[0])
        logs.append(rig.log_dir / pod[1].metadata.name / cfg.log_path)
        children.append(child)
    for child in children:
        wait_for("the child to run", lambda c=child: with_arg(c))
    victim = _pid(rig, cids[0])
    rig.daemon.stop(signal.SIGKILL)
    os.kill(victim, signal.SIGKILL)  # while no daemon runs
    rig.daemon = start_crid(rig.base, config=rig.config)

    gone = rig.status(cids[0]).status
    assert (gone.state, gone.exit_code) == (pb.CONTAINER_EXITED, 137)
    for cid, log in zip(cids[1:], logs[1:], strict=True):
        assert rig.status(cid).status.state == pb.CONTAINER_RUNNING
        assert rig.exec(cid, "/bin/echo", cid[:8]).stdout == f"{cid[:8]}\n".encode()
        assert read_log(log)[0] == ("stdout", "F", "up")

    for cid in cids:
        rig.stop(cid, timeout=10)
        rig.remove(cid)
    for pod_id in pods:
        rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    assert [c for c in children if with_arg(c)] == []
    assert {host_veth_name(p) for p in pods} & _links() == set()
    assert {n for n in _links() - links_before if n.startswith("crtc")} <= {rig.bridge}
    assert mounts_under(rig.daemon.root) == []  # overlay rootfs, shm
    assert mounts_under(rig.daemon.run_root) == []  # pinned namespaces
    assert cgroups_under(rig.cgroup_parent) == []
    assert zombies(rig.daemon) == []
