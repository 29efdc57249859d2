"""Security-context behaviours the kubelet and cri-tools' validation suite rely on, through the
CRI as the kubelet calls it: Localhost seccomp profiles anywhere, RunAsGroup needing a user."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import ContainerRig, container_config

SLEEP = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")
# cri-tools' SeccompProfilePath profiles deny one call with SCMP_ACT_ERRNO (EPERM by default);
# busybox may call mkdir or mkdirat, chmod or fchmodat.
DENY_MKDIR_CHMOD = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat", "chmod", "fchmodat", "fchmodat2"],
     "action": "SCMP_ACT_ERRNO"}]}


def _seccomp(ref: str) -> pb.LinuxContainerConfig:
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                   localhost_ref=ref)))


def test_localhost_profile_in_any_directory_blocks_its_syscalls(rig: ContainerRig,
                                                                 tmp_path: Path) -> None:
    profile = tmp_path / "elsewhere" / "deny-mkdir.json"
    profile.parent.mkdir()
    profile.write_text(json.dumps(DENY_MKDIR_CHMOD))
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=SLEEP, linux=_seccomp(str(profile))))
    denied = rig.exec(cid, "mkdir", "/tmp/crt-denied")
    assert denied.exit_code != 0
    assert b"Operation not permitted" in denied.stderr
    chmod = rig.exec(cid, "busybox", "chmod", "700", "/tmp")
    assert b"Operation not permitted" in chmod.stderr
    allowed = rig.exec(cid, "sh", "-c", "echo ok > /tmp/crt-file && cat /tmp/crt-file")
    assert (allowed.exit_code, allowed.stdout) == (0, b"ok\n")


def test_bad_localhost_profiles_are_invalid_and_named(rig: ContainerRig,
                                                      tmp_path: Path) -> None:
    (tmp_path / "garbage.json").write_text("{not json")
    pod = rig.run_pod()
    for ref in ("deny-mkdir.json", str(tmp_path), str(tmp_path / "missing.json"),
                str(tmp_path / "garbage.json")):
        with pytest.raises(grpc.RpcError) as err:
            rig.create(pod, container_config(command=SLEEP, linux=_seccomp(ref)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ref
        assert repr(ref) in err.value.details(), err.value.details()
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []


def test_run_as_group_without_user_is_refused(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    no_user = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        run_as_group=pb.Int64Value(value=1234)))
    with pytest.raises(grpc.RpcError) as err:
        rig.create(pod, container_config(command=SLEEP, linux=no_user))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "run_as_group" in err.value.details()
    # with a user it runs, and the group is the primary one
    with_user = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=1234)))
    cid = rig.run(pod, container_config(command=SLEEP, linux=with_user))
    assert rig.exec(cid, "id", "-g").stdout == b"1234\n"


def test_pod_run_as_group_without_user_is_refused(rig: ContainerRig) -> None:
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="crt-ctr-rag", uid="uid-crt-ctr-rag",
                                       namespace="crt-ns"),
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=rig.cgroup_parent,
                                       security_context=pb.LinuxSandboxSecurityContext(
                                           run_as_group=pb.Int64Value(value=1234))))
    with pytest.raises(grpc.RpcError) as err:
        rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "run_as_group" in err.value.details()
    assert rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items == []
