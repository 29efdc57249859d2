"""More of what the kubelet does: restart survival, OOM, stats, web server on the pod IP,
events, filters and attempts, log rotation, resource updates, pod teardown."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    mounts_under,
    read_log,
    wait_for,
)
from tests.integration.pods.helpers import cgroups_under


def _pid(rig: ContainerRig, cid: str) -> int:
    return int(json.loads(rig.status(cid, verbose=True).info["info"])["pid"])


def test_containers_and_logs_survive_a_restart(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sh", "-c",
                                    "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"))
    cid = rig.run(pod, cfg)
    ends = rig.run(pod, container_config(command=("/bin/sh", "-c", "sleep 1; exit 4")))
    pid = _pid(rig, cid)
    rig.daemon.stop(signal.SIGKILL)
    time.sleep(1.5)  # `ends` exits while no daemon runs
    log = rig.log_dir / pod[1].metadata.name / cfg.log_path
    before = len(read_log(log))
    rig.restart()
    st = rig.status(cid).status
    assert st.state == pb.CONTAINER_RUNNING and _pid(rig, cid) == pid
    gone = rig.status(ends).status
    assert (gone.state, gone.exit_code, gone.reason) == (pb.CONTAINER_EXITED, 4, "Error")
    wait_for("more log lines", lambda: len(read_log(log)) > before + 3, 5)
    assert rig.exec(cid, "/bin/echo", "hi").stdout == b"hi\n"
    rig.restart()  # a graceful (SIGTERM) restart keeps them too
    assert rig.status(cid).status.state == pb.CONTAINER_RUNNING and _pid(rig, cid) == pid
    rig.stop(cid)
    assert rig.status(cid).status.exit_code == 137


def test_oom_kill_is_reported(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    limit = pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
        memory_limit_in_bytes=16 * 1024 * 1024))
    cid = rig.run(pod, container_config(
        command=("/bin/sh", "-c", "x=a; while :; do x=$x$x; done"), linux=limit))
    wait_for("OOM kill", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED, 20)
    st = rig.status(cid).status
    assert (st.reason, st.exit_code) == ("OOMKilled", 137)
    assert st.resources.linux.memory_limit_in_bytes == 16 * 1024 * 1024


def test_stats_move_when_burning_cpu(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sh", "-c",
                                                 "dd if=/dev/zero of=/big bs=1M count=8; "
                                                 "while :; do :; done")))
    first = rig.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    time.sleep(1)
    second = rig.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    burnt = second.cpu.usage_core_nano_seconds.value - first.cpu.usage_core_nano_seconds.value
    assert burnt > 300_000_000, (first.cpu, second.cpu)
    assert second.cpu.usage_nano_cores.value > 300_000_000
    assert second.memory.working_set_bytes.value > 0
    assert second.writable_layer.used_bytes.value >= 8 * 1024 * 1024
    assert second.writable_layer.inodes_used.value >= 2
    assert second.attributes.id == cid
    listed = rig.rt.ListContainerStats(pb.ListContainerStatsRequest()).stats
    assert [s.attributes.id for s in listed] == [cid]
    streamed = [s.attributes.id for r in rig.rt.StreamContainerStats(
        pb.StreamContainerStatsRequest()) for s in r.container_stats]
    assert streamed == [cid]
    pst = rig.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod[0])).stats
    assert pst.attributes.id == pod[0]
    assert pst.linux.cpu.usage_core_nano_seconds.value >= \
        second.cpu.usage_core_nano_seconds.value
    assert pst.linux.process.process_count.value >= 1
    assert [c.attributes.id for c in pst.linux.containers] == [cid]
    assert pst.linux.network.default_interface.name == "eth0"
    listed_pods = rig.rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest()).stats
    assert [p.attributes.id for p in listed_pods] == [pod[0]]
    names = {d.name for d in rig.rt.ListMetricDescriptors(
        pb.ListMetricDescriptorsRequest()).descriptors}
    assert {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
            "container_network_receive_bytes_total"} <= names
    metrics = rig.rt.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
    assert [m.pod_sandbox_id for m in metrics] == [pod[0]]
    assert {m.name for m in metrics[0].container_metrics[0].metrics} <= names
    streamed = [m for r in rig.rt.StreamPodSandboxMetrics(
        pb.StreamPodSandboxMetricsRequest(), timeout=30) for m in r.pod_sandbox_metrics]
    assert [m.pod_sandbox_id for m in streamed] == [pod[0]]
    assert [c.container_id for c in streamed[0].container_metrics] == [
        c.container_id for c in metrics[0].container_metrics]
    assert [(m.name, list(m.label_values)) for m in streamed[0].container_metrics[0].metrics] \
        == [(m.name, list(m.label_values)) for m in metrics[0].container_metrics[0].metrics]


def test_web_server_answers_on_the_pod_ip(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    ip = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod[0])).status.network.ip
    assert ip.startswith("10.214.")
    rig.run(pod, container_config(command=(
        "/bin/sh", "-c", "mkdir -p /www && echo hello-from-crid > /www/index.html && "
        "exec /bin/busybox httpd -f -p 8080 -h /www")))
    client = rig.run(rig.run_pod(), container_config(command=("/bin/sleep", "3600")))

    def fetch() -> bytes:
        res = rig.exec(client, "/bin/wget", "-q", "-O", "-", f"http://{ip}:8080/")
        return res.stdout if res.exit_code == 0 else b""

    assert wait_for("the web server", fetch, 10) == b"hello-from-crid\n"
    pst = rig.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod[0])).stats
    assert pst.linux.network.default_interface.tx_bytes.value > 0


def test_events_list_filters_and_attempts(rig: ContainerRig) -> None:
    events: list[pb.ContainerEventResponse] = []
    stream = rig.rt.GetContainerEvents(pb.GetEventsRequest())

    def collect() -> None:
        try:
            events.extend(stream)
        except grpc.RpcError as e:  # cancelled at the end of the test
            assert e.code() == grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    time.sleep(0.2)
    pod = rig.run_pod()
    first = rig.run(pod, container_config(name="crt-ctr-app", command=("/bin/true",),
                                          labels={"tier": "web"}))
    wait_for("exit", lambda: rig.status(first).status.state == pb.CONTAINER_EXITED, 2)
    dup = container_config(name="crt-ctr-app", command=("/bin/true",))
    assert code_of(lambda: rig.create(pod, dup)) == grpc.StatusCode.ALREADY_EXISTS
    retry = container_config(name="crt-ctr-app", command=("/bin/sleep", "3600"))
    retry.metadata.attempt = 1
    second = rig.run(pod, retry)
    assert rig.status(second).status.metadata.attempt == 1

    def ids(**kw: object) -> list[str]:
        f = pb.ContainerFilter(**kw)  # type: ignore[arg-type]
        return [c.id for c in rig.rt.ListContainers(pb.ListContainersRequest(filter=f)).containers]

    assert sorted(ids()) == sorted([first, second])
    assert ids(id=first[:12]) == [first]
    assert ids(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)) == [second]
    assert ids(label_selector={"tier": "web"}) == [first]
    assert sorted(ids(pod_sandbox_id=pod[0])) == sorted([first, second])
    assert ids(pod_sandbox_id="f" * 64) == []
    streamed = [c.id for r in rig.rt.StreamContainers(pb.StreamContainersRequest())
                for c in r.containers]
    assert sorted(streamed) == sorted([first, second])
    rig.remove(first)
    wait_for("events", lambda: len(events) >= 6, 3)
    stream.cancel()
    kinds = [(e.container_id, e.container_event_type) for e in events]
    assert kinds[:6] == [(first, pb.CONTAINER_CREATED_EVENT), (first, pb.CONTAINER_STARTED_EVENT),
                         (first, pb.CONTAINER_STOPPED_EVENT), (second, pb.CONTAINER_CREATED_EVENT),
                         (second, pb.CONTAINER_STARTED_EVENT), (first, pb.CONTAINER_DELETED_EVENT)]
    assert events[0].pod_sandbox_status.id == pod[0]
    assert [s.id for s in events[0].containers_statuses] == [first]


def test_log_rotation_and_resource_update(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sh", "-c", "while :; do echo line; sleep 0.05; done"))
    cid = rig.run(pod, cfg)
    log = rig.log_dir / pod[1].metadata.name / cfg.log_path
    wait_for("a log line", lambda: log.exists() and read_log(log), 3)
    os.rename(log, str(log) + ".1")
    rig.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    wait_for("the new log", lambda: log.exists() and read_log(log), 3)
    assert read_log(log)[0] == ("stdout", "F", "line")
    rig.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=64 * 1024 * 1024, cpu_shares=512)))
    st = rig.status(cid).status
    assert st.resources.linux.memory_limit_in_bytes == 64 * 1024 * 1024
    cg = json.loads(rig.status(cid, verbose=True).info["info"])["runtimeSpec"]["linux"][
        "cgroupsPath"]
    limit = Path("/sys/fs/cgroup/memory") / cg.lstrip("/") / "memory.limit_in_bytes"
    assert limit.read_text().strip() == str(64 * 1024 * 1024)
    rig.stop(cid)
    assert code_of(lambda: rig.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(
        container_id=cid))) == grpc.StatusCode.FAILED_PRECONDITION


def test_pod_removal_leaves_no_mount_process_or_cgroup(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cids = [rig.run(pod, container_config(command=("/bin/sleep", "3600"))) for _ in range(3)]
    pids = [_pid(rig, c) for c in cids]
    assert len(mounts_under(rig.daemon.root / "containers")) == 3
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
    assert {rig.status(c).status.state for c in cids} == {pb.CONTAINER_EXITED}
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    assert mounts_under(rig.daemon.root / "containers") == []
    assert all(not Path(f"/proc/{p}").exists() for p in pids)
    assert cgroups_under(rig.cgroup_parent) == []
    assert os.listdir(rig.daemon.run_root / "runtime") == []
    assert os.listdir(rig.daemon.run_root / "exits") == []


def test_remove_image_refused_while_used_and_status_features(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.create(pod, container_config(command=("/bin/true",)))
    spec = pb.ImageSpec(image=rig.image)
    assert code_of(lambda: rig.daemon.images.RemoveImage(pb.RemoveImageRequest(image=spec))) \
        == grpc.StatusCode.FAILED_PRECONDITION
    rig.remove(cid)
    rig.daemon.images.RemoveImage(pb.RemoveImageRequest(image=spec))
    st = rig.rt.Status(pb.StatusRequest())
    handlers = {h.name: h.features for h in st.runtime_handlers}
    assert set(handlers) == {"", "crid"}
    assert handlers[""] == handlers["crid"]
    # this kernel has mount_setattr: rro and idmapped mounts (user namespaces)
    assert handlers[""].recursive_read_only_mounts and handlers[""].user_namespaces
    assert st.features.supplemental_groups_policy


def test_create_outliving_its_deadline_is_handed_to_the_retry(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sleep", "3600"))
    cfg.image.image = rig.image
    req = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=cfg, sandbox_config=pod[1])
    assert code_of(lambda: rig.rt.CreateContainer(req, timeout=0.002)) == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1)  # the first create finishes meanwhile
    cid = rig.rt.CreateContainer(req, timeout=30).container_id
    assert [c.id for c in rig.rt.ListContainers(pb.ListContainersRequest()).containers] == [cid]
    assert code_of(lambda: rig.rt.CreateContainer(req, timeout=30)) == \
        grpc.StatusCode.ALREADY_EXISTS


def test_a_retry_while_the_first_create_is_in_flight_waits_for_it(rig: ContainerRig) -> None:
    """The kubelet retries at once after its deadline; the first create is still running then
    (the "name is reserved" loop users report against every engine)."""
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sleep", "3600"))
    cfg.image.image = rig.image
    req = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=cfg, sandbox_config=pod[1])
    assert code_of(lambda: rig.rt.CreateContainer(req, timeout=0.002)) == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    cid = rig.rt.CreateContainer(req, timeout=30).container_id
    assert [c.id for c in rig.rt.ListContainers(pb.ListContainersRequest()).containers] == [cid]
    rig.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert rig.status(cid).status.state == pb.CONTAINER_RUNNING
