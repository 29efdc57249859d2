"""RunPodSandbox / status / list / stop / remove through a real daemon over its socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import PodRig, code_of, in_pod, pod_config


def test_run_status_list_stop_remove(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent)
    pod_id = rig.run(cfg)
    st = rig.status(pod_id, verbose=True)
    assert st.status.state == pb.SANDBOX_READY
    assert st.status.metadata == cfg.metadata
    assert dict(st.status.labels) == {"app": "crt"}
    assert dict(st.status.annotations) == {"a": "b"}
    assert st.status.linux.namespaces.options.network == pb.POD
    assert st.status.created_at > 0
    info = json.loads(st.info["info"])
    assert info["id"] == pod_id
    listed = rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert [p.id for p in listed] == [pod_id]
    by_prefix = rig.rt.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(id=pod_id[:10]))).items
    assert [p.id for p in by_prefix] == [pod_id]
    rig.stop(pod_id)
    assert rig.status(pod_id).status.state == pb.SANDBOX_NOTREADY
    ready = rig.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
        state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY)))).items
    assert list(ready) == []
    rig.stop(pod_id)
    rig.remove(pod_id)
    rig.remove(pod_id)
    assert code_of(lambda: rig.status(pod_id)) == grpc.StatusCode.NOT_FOUND
    assert not (rig.daemon.run_root / "pods" / pod_id).exists()


def test_label_selector_and_stream(rig: PodRig) -> None:
    a = rig.run(pod_config(parent=rig.cgroup_parent))
    cfg = pod_config(parent=rig.cgroup_parent)
    cfg.labels["tier"] = "db"
    b = rig.run(cfg)
    sel = rig.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
        label_selector={"tier": "db"}))).items
    assert [p.id for p in sel] == [b]
    streamed = [p.id for chunk in rig.rt.StreamPodSandboxes(pb.StreamPodSandboxesRequest())
                for p in chunk.pod_sandboxes]
    assert sorted(streamed) == sorted([a, b])


def test_name_reserved_with_holder_id(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent)
    first = rig.run(cfg)
    try:
        rig.run(cfg)
        raise AssertionError("second sandbox with the same name was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS
        assert first in e.details()
    rig.remove(first)
    again = rig.run(cfg)  # the name is free once the holder is removed
    assert again != first


def test_namespaces_pinned_hostname_dns_sysctl(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent, sysctls={
        "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1234"})
    cfg.dns_config.CopyFrom(pb.DNSConfig(servers=["10.213.0.10", "1.1.1.1"],
                                         searches=["crt.svc", "svc.local"],
                                         options=["ndots:5", "timeout:2"]))
    pod_id = rig.run(cfg)
    ns_dir = rig.daemon.run_root / "pods" / pod_id / "ns"
    net_ino = os.stat(ns_dir / "net").st_ino
    out = in_pod(ns_dir, "sh", "-c", "readlink /proc/self/ns/net; hostname; "
                 "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni")
    link, hostname, port_start, shmmni = out.split()
    assert link == f"net:[{net_ino}]"
    assert link != os.readlink("/proc/self/ns/net")
    assert hostname == cfg.hostname
    assert (port_start, shmmni) == ("80", "1234")
    resolv = (rig.daemon.run_root / "pods" / pod_id / "resolv.conf").read_text()
    assert resolv == ("nameserver 10.213.0.10\nnameserver 1.1.1.1\nsearch crt.svc svc.local\n"
                      "options ndots:5 timeout:2\n")
    shm = rig.daemon.run_root / "pods" / pod_id / "shm"
    assert os.path.ismount(shm) and os.statvfs(shm).f_blocks * os.statvfs(shm).f_frsize == \
        8 * 1024 * 1024
    rig.remove(pod_id)
    assert not ns_dir.exists()


def test_shared_pid_pod_has_infra_reaper(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent,
                     namespaces=pb.NamespaceOption(pid=pb.POD))
    pod_id = rig.run(cfg)
    info = json.loads(rig.status(pod_id, verbose=True).info["info"])
    pid = info["infra"]["pid"]
    ns_dir = Path(info["pod_dir"]) / "ns"
    assert os.readlink(f"/proc/{pid}/ns/net") == f"net:[{os.stat(ns_dir / 'net').st_ino}]"
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert Path(f"/proc/{pid}/status").read_text().count("NSpid:\t") == 1
    nspid = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
             if ln.startswith("NSpid:")][0].split()
    assert nspid[-1] == "1"
    # Nothing waits on it but the daemon: no helper process is kept per pod.
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid == rig.daemon.proc.pid
    # An orphan in the pod's PID namespace is reaped by pid 1 (no zombie left).
    subprocess.run(["nsenter", f"--target={pid}", "--pid", "--", "/bin/busybox", "sh", "-c",
                    "/bin/busybox sleep 0.1 &"], check=True, timeout=10)
    time.sleep(0.4)
    assert Path(f"/proc/{pid}/task/{pid}/children").read_text().split() == []
    cg = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"{rig.cgroup_parent}/crid-{pod_id}" in cg
    os.kill(pid, signal.SIGKILL)  # the pod's pid 1 killed from outside: the pod is not ready
    time.sleep(0.2)
    assert rig.status(pod_id).status.state == pb.SANDBOX_NOTREADY
    rig.stop(pod_id)
    rig.remove(pod_id)


def test_host_network_pod(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent,
                     namespaces=pb.NamespaceOption(network=pb.NODE, ipc=pb.NODE))
    pod_id = rig.run(cfg)
    st = rig.status(pod_id, verbose=True)
    assert st.status.linux.namespaces.options.network == pb.NODE
    info = json.loads(st.info["info"])
    assert info["namespaces"] == {}
    assert st.status.network.ip == ""
    assert Path(info["hosts"]).read_text() == Path("/etc/hosts").read_text()
    rig.remove(pod_id)


def test_pod_survives_restart_and_stop_remove_idempotent(rig: PodRig) -> None:
    pod_id = rig.run(pod_config(parent=rig.cgroup_parent,
                                namespaces=pb.NamespaceOption(pid=pb.POD)))
    infra = json.loads(rig.status(pod_id, verbose=True).info["info"])["infra"]
    stopped = rig.run()
    rig.stop(stopped)
    rig.restart(signal.SIGKILL)
    assert rig.status(pod_id).status.state == pb.SANDBOX_READY
    assert json.loads(rig.status(pod_id, verbose=True).info["info"])["infra"] == infra
    assert Path(f"/proc/{infra['pid']}").exists()
    assert rig.status(stopped).status.state == pb.SANDBOX_NOTREADY
    rig.stop(stopped)
    rig.remove(stopped)
    rig.restart()
    assert code_of(lambda: rig.status(stopped)) == grpc.StatusCode.NOT_FOUND
    rig.stop(pod_id)
    rig.stop(pod_id)
    rig.remove(pod_id)
    rig.remove(pod_id)
    assert code_of(lambda: rig.status(pod_id)) == grpc.StatusCode.NOT_FOUND


def test_unknown_ids(rig: PodRig) -> None:
    unknown = "0" * 64
    assert code_of(lambda: rig.status(unknown)) == grpc.StatusCode.NOT_FOUND
    rig.stop(unknown)
    rig.remove(unknown)


def test_pod_cgroup_resources_and_update(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent)
    cfg.linux.resources.CopyFrom(pb.LinuxContainerResources(
        memory_limit_in_bytes=64 << 20, cpu_shares=512))
    pod_id = rig.run(cfg)
    cg = Path("/sys/fs/cgroup")
    rel = f"{rig.cgroup_parent.lstrip('/')}/crid-{pod_id}"
    assert (cg / "memory" / rel / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert (cg / "cpu" / rel / "cpu.shares").read_text().strip() == "512"
    rig.rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pod_id,
        overhead=pb.LinuxContainerResources(memory_limit_in_bytes=16 << 20),
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=128 << 20, cpu_shares=256)))
    assert (cg / "memory" / rel / "memory.limit_in_bytes").read_text().strip() == \
        str(144 << 20)
    assert (cg / "cpu" / rel / "cpu.shares").read_text().strip() == "256"
    rig.stop(pod_id)
    assert code_of(lambda: rig.rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pod_id, resources=pb.LinuxContainerResources(cpu_shares=2)))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    rig.remove(pod_id)
    assert not (cg / "memory" / rel).exists()
