"""200 create/remove cycles, 10 at a time, leave no veth, pin, lease, mount or cgroup."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import grpc

from crid.api import api_pb2 as pb
from crid.network.links import host_veth_name
from tests.integration.pods.helpers import (
    PodRig,
    bridge_ports,
    cgroups_under,
    mounts_under,
    pod_config,
)

CYCLES, PARALLEL = 200, 10


def _leases(rig: PodRig) -> list[str]:
    """The built-in network's lease files (one per pod under <root>/network/pods)."""
    pods = rig.daemon.root / "network" / "pods"
    return sorted(p.name for p in pods.iterdir()) if pods.exists() else []


def _links() -> set[str]:
    import subprocess

    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_churn_leaves_nothing(rig: PodRig) -> None:
    before = (_links(), mounts_under(rig.daemon.run_root), cgroups_under(rig.cgroup_parent))
    leases_before = _leases(rig)
    ids: list[str] = []

    def cycle(i: int) -> None:
        ns = pb.NamespaceOption(pid=pb.POD) if i % 4 == 0 else pb.NamespaceOption()
        cfg = pod_config(parent=rig.cgroup_parent, namespaces=ns)
        pod_id = rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                      timeout=120).pod_sandbox_id
        ids.append(pod_id)
        st = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        assert st.status.network.ip
        if i % 2:
            rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def guarded(i: int) -> str:
        try:
            cycle(i)
            return ""
        except grpc.RpcError as e:
            return f"cycle {i}: {e.code().name}: {e.details()}"

    with ThreadPoolExecutor(PARALLEL) as pool:
        errors = [e for e in pool.map(guarded, range(CYCLES)) if e]
    assert errors == [], rig.daemon.log()[-3000:]

    assert len(set(ids)) == CYCLES
    links = _links()
    # Only our own names count: other pod rigs (other sessions) make crtp* bridges meanwhile,
    # so the pods' veths are checked by name and the bridge by its ports.
    assert rig.bridge in links
    assert not {host_veth_name(i) for i in ids} & links
    assert bridge_ports(rig.bridge) == []
    assert mounts_under(rig.daemon.run_root) == before[1] == []
    assert cgroups_under(rig.cgroup_parent) == before[2] == []
    assert _leases(rig) == leases_before
    pods_dir = rig.daemon.run_root / "pods"
    assert list(pods_dir.iterdir()) == []
    assert list(rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    info = json.loads(rig.rt.Status(pb.StatusRequest(verbose=True)).info["network"])
    assert info is not None
