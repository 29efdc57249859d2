"""Pod and container cgroups under both cgroup drivers, through CRI: where they are made (the
container's inside its pod's, in every hierarchy, name=systemd and a hybrid host's cgroup2
included), what stats and resource updates read and write there, and that removal leaves
nothing; a malformed cgroup_parent is refused before anything is made."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.conftest import serving, write_config
from tests.integration.containers.helpers import ContainerRig, code_of, container_config
from tests.integration.pods.helpers import CGROUP_ROOTS, cgroups_under, cleanup_cgroup_parent
from tests.rig.daemon import start_crid
from tests.rig.images import BuiltImage
from tests.rig.registry import Registry

PREFIX = "crt-cgd"
MEMORY = Path("/sys/fs/cgroup/memory")


class DriverRig(ContainerRig):
    driver: str
    top: str  # the cgroup directory the test's parent lives in (below every hierarchy root)


def _parent(driver: str, tag: str) -> tuple[str, str]:
    """(cgroup_parent as the kubelet sends it for this driver, its directory)."""
    if driver == "systemd":  # a kubelet-shaped pod slice: <top>-burstable-pod<uid>.slice
        top = f"{PREFIX}-{tag}"
        return (f"{top}-burstable-pod{tag}.slice",
                f"/crt.slice/crt-cgd.slice/{top}.slice/{top}-burstable.slice/"
                f"{top}-burstable-pod{tag}.slice")
    return f"/{PREFIX}-{tag}/burstable/pod{tag}", f"/{PREFIX}-{tag}/burstable/pod{tag}"


def _remove_cgroups(driver: str, tag: str) -> None:
    cleanup_cgroup_parent(f"/crt.slice/crt-cgd.slice/{PREFIX}-{tag}.slice"
                          if driver == "systemd" else f"/{PREFIX}-{tag}")
    if driver == "systemd":  # the shared upper slices, once empty (rmdir refuses otherwise)
        for root in CGROUP_ROOTS:
            for d in (root / "crt.slice" / "crt-cgd.slice", root / "crt.slice"):
                try:
                    d.rmdir()
                except OSError:
                    pass


@pytest.fixture(params=["cgroupfs", "systemd"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, registry: Registry,
        busybox_image: BuiltImage) -> Iterator[DriverRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    driver, tag = request.param, secrets.token_hex(4)
    bridge = f"crtg{secrets.token_hex(3)}"
    cfg = write_config(tmp_path, bridge)
    cfg.write_text(f'cgroup_driver = "{driver}"\n' + cfg.read_text())  # top-level key first
    parent, top = _parent(driver, tag)
    daemon = start_crid(tmp_path, config=cfg)
    r = DriverRig(tmp_path, cfg, daemon, parent, bridge)
    r.driver, r.top = driver, top
    with serving(r, registry, busybox_image, lambda: _remove_cgroups(driver, tag)):
        yield r


def _info(resp: pb.ContainerStatusResponse | pb.PodSandboxStatusResponse) -> dict:
    return json.loads(resp.info["info"])  # type: ignore[no-any-return]


def _pod_cgroup(rig: DriverRig, pod_id: str) -> str:
    return "/" + _info(rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(
        pod_sandbox_id=pod_id, verbose=True)))["cgroup"]


def _dirs(path: str) -> list[Path]:
    return [r / path.lstrip("/") for r in CGROUP_ROOTS if (r / path.lstrip("/")).is_dir()]


def _everywhere(path: str) -> list[Path]:
    return [r / path.lstrip("/") for r in CGROUP_ROOTS]


def test_container_cgroup_nests_in_its_pods_with_stats_update_and_removal(
        rig: DriverRig) -> None:
    pod = rig.run_pod()
    pod_cg = _pod_cgroup(rig, pod[0])
    if rig.driver == "systemd":  # the pod's slice of its own, nested as systemd nests slices
        unit = f"{rig.top.rsplit('/', 1)[1][:-6]}-crid_{pod[0]}.slice"
        assert pod_cg == f"{rig.top}/{unit}"
    else:
        assert pod_cg == f"{rig.top}/crid-{pod[0]}"
    assert _dirs(pod_cg) == _everywhere(pod_cg)

    cid = rig.run(pod, container_config(command=("/bin/sh", "-c", "while :; do :; done")))
    status = rig.status(cid, verbose=True)
    cgroups_path = _info(status)["runtimeSpec"]["linux"]["cgroupsPath"]
    if rig.driver == "systemd":  # as CRI-O writes it: <slice>:<prefix>:<name>
        assert cgroups_path == f"{os.path.basename(pod_cg)}:crid:{cid}"
        ctr_cg = f"{pod_cg}/crid-{cid}.scope"
    else:
        assert cgroups_path == f"{pod_cg}/crid-{cid}"
        ctr_cg = cgroups_path
    assert _dirs(ctr_cg) == _everywhere(ctr_cg)
    # Every hierarchy the process is in, name=systemd and the hybrid cgroup2 ("0::") included.
    lines = Path(f"/proc/{_info(status)['pid']}/cgroup").read_text().splitlines()
    assert {line.split(":", 2)[2] for line in lines} == {ctr_cg}, lines
    assert any(":name=systemd:" in line for line in lines)

    stats = rig.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.working_set_bytes.value > 0
    pst = rig.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod[0])).stats
    assert [c.attributes.id for c in pst.linux.containers] == [cid]
    # The pod's cgroup holds the container's: its counters include the container's.
    assert pst.linux.cpu.usage_core_nano_seconds.value >= stats.cpu.usage_core_nano_seconds.value
    assert pst.linux.process.process_count.value >= 1

    rig.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=64 << 20, cpu_shares=512)))
    mem = MEMORY / ctr_cg.lstrip("/")
    assert (mem / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
    assert (Path("/sys/fs/cgroup/cpu") / ctr_cg.lstrip("/") / "cpu.shares").read_text() == \
        "512\n"
    assert rig.status(cid).status.resources.linux.memory_limit_in_bytes == 64 << 20

    rig.stop(cid)
    rig.remove(cid)
    assert _dirs(ctr_cg) == []
    assert _dirs(pod_cg) == _everywhere(pod_cg)  # the pod's stays until the pod goes

    second = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    second_cg = (f"{pod_cg}/crid-{second}.scope" if rig.driver == "systemd"
                 else f"{pod_cg}/crid-{second}")
    assert _dirs(second_cg) == _everywhere(second_cg)
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    assert _dirs(pod_cg) == []
    assert cgroups_under(rig.top) == []  # the kubelet's parent itself is the kubelet's


def test_containers_of_a_pod_stay_inside_it_across_a_driver_change(rig: DriverRig) -> None:
    pod = rig.run_pod()
    pod_cg = _pod_cgroup(rig, pod[0])
    other = "cgroupfs" if rig.driver == "systemd" else "systemd"
    rig.daemon.stop()
    rig.config.write_text(rig.config.read_text().replace(f'"{rig.driver}"', f'"{other}"', 1))
    rig.daemon = start_crid(rig.base, config=rig.config)
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    pid = _info(rig.status(cid, verbose=True))["pid"]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    assert {os.path.dirname(line.split(":", 2)[2]) for line in lines} == {pod_cg}, lines
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]), timeout=60)
    assert cgroups_under(rig.top) == []


BAD_PARENTS = ["crt-cgd--x.slice", "-crt-cgd-x.slice", "crt-cgd-x-.slice", ".slice"]
BAD_SYSTEMD_PARENTS = ["/crt-cgd-x/burstable", "crt-cgd-x", "crt-cgd:x.slice",
                       "crt-cgd-x@1.slice", "crt-cgd-" + "x" * 250 + ".slice"]


def test_malformed_cgroup_parent_is_invalid_argument_and_makes_nothing(rig: DriverRig) -> None:
    bad = BAD_PARENTS + (BAD_SYSTEMD_PARENTS if rig.driver == "systemd" else [])
    for parent in bad:
        rig.cgroup_parent = parent
        assert code_of(rig.run_pod) == grpc.StatusCode.INVALID_ARGUMENT, parent
    assert rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items == []
    pods_dir = rig.daemon.run_root / "pods"
    assert not pods_dir.exists() or os.listdir(pods_dir) == []
    for root in CGROUP_ROOTS:
        assert not (root / "crt.slice").exists() or rig.driver == "cgroupfs"
        assert not (root / "crt-cgd-x").exists()
