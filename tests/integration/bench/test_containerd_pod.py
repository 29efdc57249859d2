"""containerd runs a pod with the rig's pause image; the harness removes what the pod made."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.bench.cgroups import CGROUP_PARENT, cgroup_dirs, remove_cgroup_dirs
from tests.bench.containerd import ContainerdOptions, _shim_pids, running_containerd
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry

# Unique per run: other sessions may run this test at the same time on this machine.
_RUN = secrets.token_hex(3)
BRIDGE = f"crtrig{_RUN}"
PARENT = f"{CGROUP_PARENT}-test-{_RUN}"
SUBNET = f"10.239.{secrets.randbelow(250) + 2}.0/24"


def test_pause_sandbox_runs_and_everything_is_removed(registry: Registry,
                                                      pause_image: BuiltImage) -> None:
    push(DistributionClient(registry), "crt-rig/pause", pause_image, tag="3.10")
    workdir = Path(tempfile.mkdtemp(prefix="crt-rig-pod-")) / "containerd"
    options = ContainerdOptions(sandbox_image=registry.ref("crt-rig/pause", "3.10"),
                                plain_http_registries=(registry.netloc,), bridge=BRIDGE,
                                subnet=SUBNET)
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="crt-rig-pod", namespace="default", uid="crt-1"),
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=PARENT),
    )
    try:
        with running_containerd(workdir, options) as ctd, CriClient(ctd.socket) as client:
            pod = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config),
                                               timeout=60).pod_sandbox_id
            status = client.runtime.PodSandboxStatus(
                pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
            assert status.state == pb.SANDBOX_READY
            assert status.network.ip.startswith(SUBNET.rsplit(".", 2)[0] + ".")
            assert Path(f"/sys/class/net/{BRIDGE}").exists()
            assert _shim_pids(ctd.socket) != []
        assert _shim_pids(ctd.socket) == []
        assert not Path(f"/sys/class/net/{BRIDGE}").exists()
        assert not workdir.exists()
    finally:
        workdir.parent.rmdir()
        left = remove_cgroup_dirs(PARENT)
    assert left == []
    assert cgroup_dirs(PARENT) == []
