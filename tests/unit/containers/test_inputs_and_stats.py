"""Host-side request checks, exit records, exec output budget, stats arithmetic, RPC shapes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from crid.containers import inputs
from crid.containers.execsync import _Collector, _exit_code
from crid.containers.model import (
    ContainerRequest,
    DeviceRequest,
    MountRequest,
    Namespaces,
    NsMode,
    Profile,
    ProfileKind,
    Security,
)
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.runtime_adapter import exit_info, parse_rfc3339_nano
from crid.containers.seams import PodForContainers
from crid.containers.spec import PodContext
from crid.containers.stats import net_usage
from crid.errors import InvalidArgument, NotFound
from crid.server import container_rpc, metrics_rpc
from runtime.cgroups import parse_cgroups_path
from runtime.monitor.exitfile import ExitStatus

POD = PodContext("p", "n", "ns", "u", "h")


def _req(**sec: object) -> ContainerRequest:
    return ContainerRequest("c", 0, "img", security=Security(**sec))  # type: ignore[arg-type]


def test_mount_sources_must_exist_and_stay_out_of_crid_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "x").mkdir(parents=True)
    (tmp_path / "link").symlink_to(state / "x")
    ok = ContainerRequest("c", 0, "i", mounts=(MountRequest("/d", str(tmp_path)),))
    inputs.check_mount_sources(ok, (state,))
    for src, err in ((tmp_path / "none", NotFound), (state / "x", InvalidArgument),
                     (tmp_path / "link", InvalidArgument)):
        req = ContainerRequest("c", 0, "i", mounts=(MountRequest("/d", str(src)),))
        with pytest.raises(err):
            inputs.check_mount_sources(req, (state,))


def test_host_devices(tmp_path: Path) -> None:
    dev = inputs.host_device(DeviceRequest("/dev/n", "/dev/null", "rw"))
    assert (dev.kind, dev.major, dev.minor, dev.permissions) == ("c", 1, 3, "rw")
    with pytest.raises(NotFound):
        inputs.host_device(DeviceRequest("/dev/x", "/dev/crt-ctr-none"))
    with pytest.raises(InvalidArgument):
        inputs.host_device(DeviceRequest("/dev/x", str(Path(__file__))))
    with pytest.raises(InvalidArgument):
        inputs.host_device(DeviceRequest("/dev/x", "/dev/null", "rwx"))


def test_localhost_seccomp_profile_any_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    (tmp_path / "bad.json").write_text("not json")
    (tmp_path / "list.json").write_text("[1]")
    os.mkfifo(tmp_path / "fifo")
    prof = lambda ref: _req(seccomp=Profile(ProfileKind.LOCALHOST, ref))  # noqa: E731
    assert inputs.localhost_profile(prof(str(tmp_path / "p.json"))) == {
        "defaultAction": "SCMP_ACT_ALLOW"}
    assert inputs.localhost_profile(_req()) is None
    for bad in ("p.json", str(tmp_path), str(tmp_path / "bad.json"), str(tmp_path / "list.json"),
                str(tmp_path / "none.json"), str(tmp_path / "fifo")):
        with pytest.raises(InvalidArgument, match=repr(bad)):
            inputs.localhost_profile(prof(bad))


def test_log_and_cgroup_paths() -> None:
    assert inputs.log_path("/var/log/pods/x", "c/0.log") == "/var/log/pods/x/c/0.log"
    assert inputs.log_path("/var/log/pods/x", "") == ""
    for bad in ("../0.log", "../../etc/passwd"):
        with pytest.raises(InvalidArgument):
            inputs.log_path("/var/log/pods/x", bad)
    with pytest.raises(InvalidArgument):
        inputs.log_path("", "0.log")
    assert inputs.cgroups_path("/kubepods/pod1", "abc", "cgroupfs") == "/kubepods/pod1/crid-abc"
    assert inputs.cgroups_path("kubepods/pod1", "abc", "cgroupfs") == "/kubepods/pod1/crid-abc"
    assert inputs.cgroups_path("", "abc", "cgroupfs") == "/crid-abc"


@pytest.mark.parametrize(("pod_cgroup", "driver", "want"), [
    # The pods' systemd layout: the pod's own slice; its containers are scopes inside it.
    ("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
     "kubepods-burstable-pod1-crid_p.slice", "systemd",
     "kubepods-burstable-pod1-crid_p.slice:crid:abc"),
    ("system.slice/system-crid_p.slice", "systemd", "system-crid_p.slice:crid:abc"),
    ("crid_p.slice", "systemd", "crid_p.slice:crid:abc"),
    # A pod made by the cgroupfs driver (before a restart): its containers stay inside it.
    ("crid/crid-p", "systemd", "/crid/crid-p/crid-abc"),
    ("kubepods.slice/kubepods-burstable.slice/crid-p", "systemd",
     "/kubepods.slice/kubepods-burstable.slice/crid-p/crid-abc"),
    ("a/b.slice", "systemd", "/a/b.slice/crid-abc"),  # not where systemd would nest b.slice
    # A pod made by the systemd driver, containers under the cgroupfs driver.
    ("system.slice/system-crid_p.slice", "cgroupfs", "/system.slice/system-crid_p.slice/crid-abc"),
])
def test_container_cgroup_lies_inside_its_pods(pod_cgroup: str, driver: str, want: str) -> None:
    got = inputs.cgroups_path(pod_cgroup, "abc", driver)
    assert got == want
    assert parse_cgroups_path(got, "abc").path.startswith(f"/{pod_cgroup}/crid-abc")


@pytest.mark.parametrize("pod, asked, want", [
    (PodForContainers(POD, "", ""), NsMode.POD, (NsMode.POD, NsMode.POD, NsMode.CONTAINER)),
    (PodForContainers(POD, "", "", shared_pid=True), NsMode.POD,
     (NsMode.POD, NsMode.POD, NsMode.POD)),
    (PodForContainers(POD, "", "", host_network=True, host_ipc=True, host_pid=True),
     NsMode.CONTAINER, (NsMode.NODE, NsMode.NODE, NsMode.NODE)),
    (PodForContainers(POD, "", ""), NsMode.TARGET, (NsMode.POD, NsMode.POD, NsMode.TARGET)),
])
def test_pod_namespaces_win(pod: PodForContainers, asked: NsMode, want: tuple) -> None:
    req = _req(namespaces=Namespaces(network=NsMode.NODE, pid=asked, ipc=NsMode.NODE))
    ns = inputs.with_pod_namespaces(req, pod).security.namespaces
    assert (ns.network, ns.ipc, ns.pid) == want


def test_exit_records_and_times() -> None:
    ns = parse_rfc3339_nano("2026-11-22T22:15:44.123456789Z")
    assert ns % 1_000_000_000 == 123456789 and ns // 10**9 == 1795385744
    assert parse_rfc3339_nano("garbage") == 0
    info = exit_info(ExitStatus(7, 137, 9, True, "2026-11-22T22:15:44.000000001Z"))
    assert (info.exit_code, info.oom_killed, info.message) == (137, True, "killed by signal 9")
    assert _exit_code(b'{"exit_code": 3}') == 3 and _exit_code(b"") == -1


def test_exec_output_budget_is_shared_by_both_streams() -> None:
    col = _Collector(10)
    col.add(1, b"123456")
    col.add(2, b"abcdef")
    col.add(1, b"zzz")
    assert (bytes(col.bufs[1]), bytes(col.bufs[2])) == (b"123456", b"abcd")


def test_network_counters_of_a_process() -> None:
    names = {n.interface for n in net_usage(os.getpid())}
    assert "lo" not in names
    assert net_usage(2**22 + 7) == []


def test_status_message_from_a_record() -> None:
    rec = ContainerRecord(
        "c1", "p1", "app", 2, "img:1", "sha256:i", "img@sha256:d", ContainerState.EXITED,
        created_at=1, started_at=2, finished_at=3, exit_code=1, reason="Error",
        mounts=[{"destination": "/d", "source": "/s", "options": ["rbind", "rslave", "ro"]}],
        resources={"cpu": {"shares": 2}, "memory": {"limit": 5}}, uid=1000, gid=1000,
        additional_gids=[5], stop_signal="SIGUSR1")
    st = container_rpc.status_pb(rec)
    assert (st.metadata.attempt, st.state, st.reason, st.exit_code) == (
        2, pb.CONTAINER_EXITED, "Error", 1)
    assert (st.mounts[0].readonly, st.mounts[0].propagation) == (
        True, pb.PROPAGATION_HOST_TO_CONTAINER)
    assert st.resources.linux.memory_limit_in_bytes == 5
    assert list(st.user.linux.supplemental_groups) == [1000, 5]
    assert st.stop_signal == pb.SIGNAL_SIGUSR1
    f = container_rpc.filter_from_pb(pb.ContainerFilter(
        id="c", state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING),
        label_selector={"b": "2", "a": "1"}))
    assert (f.id_prefix, f.state, f.labels) == ("c", ContainerState.RUNNING,
                                                (("a", "1"), ("b", "2")))


def test_metric_descriptors_have_cadvisor_names() -> None:
    names = [d.name for d in metrics_rpc.descriptors_rpc(
        pb.ListMetricDescriptorsRequest()).descriptors]
    assert "container_memory_working_set_bytes" in names
    assert len(names) == len(set(names))
