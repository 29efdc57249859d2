"""Pods on a CNI network (Debian's bridge + host-local + portmap plugins) instead of the
built-in one: address in the status, DEL from the result cache after a restart, no leftovers."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import (
    PodRig,
    bridge_ports,
    cleanup_cgroup_parent,
    in_pod,
    mounts_under,
)
from tests.rig.daemon import start_crid

SUBNET = "10.213.200.0/24"


@pytest.fixture
def cni_rig(tmp_path: Path) -> Iterator[PodRig]:
    if os.geteuid() != 0 or not Path("/usr/lib/cni/bridge").exists():
        pytest.skip("needs root and containernetworking-plugins")
    bridge = f"crtp{secrets.token_hex(3)}"
    conf_dir = tmp_path / "cni"
    conf_dir.mkdir()
    (conf_dir / "10-crt-pod.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": f"crt-pod-{bridge}",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                      "dataDir": str(tmp_path / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": False}]}))
    cfg = tmp_path / "crid.toml"
    cfg.write_text(f'[network]\nmode = "cni"\ncni_conf_dir = "{conf_dir}"\n'
                   f'bridge = "crtq{bridge[4:]}"\npod_cidr = "10.213.0.0/16"\n')
    parent = f"/crt-pod-{secrets.token_hex(4)}"
    r = PodRig(tmp_path, cfg, start_crid(tmp_path, config=cfg), parent, bridge)
    try:
        yield r
    finally:
        try:
            r.remove_all()
            r.daemon.stop()
        finally:
            cleanup_cgroup_parent(parent)
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def test_cni_pod_lifecycle_and_del_after_restart(cni_rig: PodRig) -> None:
    rig = cni_rig
    conds = {c.type: c.status for c in rig.rt.Status(pb.StatusRequest()).status.conditions}
    assert conds["NetworkReady"] is True
    pod_id = rig.run()
    ip = rig.status(pod_id).status.network.ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(SUBNET)
    ns_dir = rig.daemon.run_root / "pods" / pod_id / "ns"
    assert f"inet {ip}/" in in_pod(ns_dir, "ip", "-4", "addr", "show", "eth0")
    assert len(bridge_ports(rig.bridge)) == 1
    rig.restart(signal.SIGKILL)
    assert rig.status(pod_id).status.network.ip == ip
    rig.stop(pod_id)  # CNI DEL from the cached ADD result, by a daemon that did not ADD
    assert bridge_ports(rig.bridge) == []
    rig.remove(pod_id)
    ipam = rig.base / "ipam"
    leases = [p.name for p in ipam.rglob("*") if p.is_file() and p.name[0].isdigit()]
    assert leases == []
    assert mounts_under(rig.daemon.run_root) == []


def test_cni_churn_200_cycles_10_concurrent_leave_nothing(cni_rig: PodRig) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from tests.integration.pods.helpers import cgroups_under, pod_config

    rig = cni_rig
    ipam = rig.base / "ipam"

    def leases() -> list[str]:
        return sorted(p.name for p in ipam.rglob("*") if p.is_file() and p.name[0].isdigit())

    def cycle(i: int) -> str:
        try:
            cfg = pod_config(parent=rig.cgroup_parent)
            pod_id = rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                          timeout=120).pod_sandbox_id
            assert rig.status(pod_id).status.network.ip
            if i % 2:
                rig.stop(pod_id)
            rig.remove(pod_id)
            return ""
        except grpc.RpcError as e:
            return f"cycle {i}: {e.code().name}: {e.details()}"

    with ThreadPoolExecutor(10) as pool:
        errors = [e for e in pool.map(cycle, range(200)) if e]
    assert errors == [], rig.daemon.log()[-3000:]
    assert bridge_ports(rig.bridge) == []
    assert leases() == []
    assert mounts_under(rig.daemon.run_root) == []
    assert cgroups_under(rig.cgroup_parent) == []
    assert list((rig.daemon.run_root / "pods").iterdir()) == []
    assert list(rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
