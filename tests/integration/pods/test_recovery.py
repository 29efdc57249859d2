"""Crash leftovers, reboot-like loss of pins, and the kubelet's retry after a deadline."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess

import grpc

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import (
    PodRig,
    bridge_ports,
    cgroups_under,
    mounts_under,
    pod_config,
)


def test_half_done_run_is_cleaned_on_start(rig: PodRig) -> None:
    rig.daemon.stop(signal.SIGKILL)
    fake = secrets.token_hex(32)
    pod_dir = rig.daemon.run_root / "pods" / fake
    ns = pod_dir / "ns"
    ns.mkdir(parents=True)
    for k in ("net", "ipc", "uts"):
        (ns / k).touch()
    subprocess.run(["unshare", f"--net={ns / 'net'}", f"--ipc={ns / 'ipc'}",
                    f"--uts={ns / 'uts'}", "true"], check=True)
    cg = f"{rig.cgroup_parent.lstrip('/')}/crid-{fake}"
    (pod_dir / "intent.json").write_text(json.dumps(
        {"cgroup_parent": rig.cgroup_parent, "cgroup_name": f"crid-{fake}", "cgroup": cg}))
    for root in ("memory", "pids"):
        subprocess.run(["mkdir", "-p", f"/sys/fs/cgroup/{root}/{cg}"], check=True)
    assert len(mounts_under(rig.daemon.run_root)) == 3
    rig.restart()
    assert not pod_dir.exists()
    assert mounts_under(rig.daemon.run_root) == []
    assert cgroups_under(rig.cgroup_parent) == []
    assert "leftover" in rig.daemon.log()


def test_lost_pins_make_pod_notready_and_remove_still_works(rig: PodRig) -> None:
    pod_id = rig.run()
    rig.daemon.stop(signal.SIGKILL)
    for k in ("net", "ipc", "uts"):  # what a reboot does to /run
        subprocess.run(["umount", "-l", str(rig.daemon.run_root / "pods" / pod_id / "ns" / k)],
                       check=True)
    rig.daemon = rig.daemon  # restart below
    rig.restart()
    assert rig.status(pod_id).status.state == pb.SANDBOX_NOTREADY
    rig.stop(pod_id)
    rig.remove(pod_id)
    assert bridge_ports(rig.bridge) == []
    assert mounts_under(rig.daemon.run_root) == []


def test_create_past_deadline_is_handed_to_the_retry(rig: PodRig) -> None:
    # A shared-PID pod takes tens of ms (reaper start): past a 5 ms deadline, still running.
    cfg = pod_config(parent=rig.cgroup_parent, namespaces=pb.NamespaceOption(pid=pb.POD))
    try:
        rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=0.005)
        raise AssertionError("the create beat its deadline; the test needs a slower one")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    retried = rig.run(cfg)
    assert rig.daemon.log().count('"method": "RunPodSandbox"') == 2
    listed = [p.id for p in rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items]
    assert listed == [retried]
    # Handed back once: a third create with the same name is a real duplicate.
    try:
        rig.run(cfg)
        raise AssertionError("duplicate accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS and retried in e.details()
