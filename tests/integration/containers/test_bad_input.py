"""Hostile and mistaken CreateContainer requests: named gRPC errors, nothing half-created."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    mounts_under,
)

NOT_FOUND, INVALID, PRECONDITION = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.FAILED_PRECONDITION)


def _linux(**sc: object) -> pb.LinuxContainerConfig:
    return pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(**sc))


def _bad_configs(rig: ContainerRig) -> list[tuple[str, pb.ContainerConfig, grpc.StatusCode]]:
    sh = ("/bin/sh", "-c", "true")
    return [
        ("image not present", container_config(command=sh, image="127.0.0.1:1/crt/none:1"),
         NOT_FOUND),
        ("missing mount source", container_config(command=sh, mounts=[pb.Mount(
            container_path="/data", host_path=str(rig.base / "nonexistent"))]), NOT_FOUND),
        ("mount source in crid's state", container_config(command=sh, mounts=[pb.Mount(
            container_path="/data", host_path=str(rig.daemon.root))]), INVALID),
        ("mount into crid's state by symlink", container_config(command=sh, mounts=[pb.Mount(
            container_path="/data", host_path=str(rig.base / "sneaky"))]), INVALID),
        ("relative container path", container_config(command=sh, mounts=[pb.Mount(
            container_path="data", host_path=str(rig.base))]), INVALID),
        ("missing device", container_config(command=sh, devices=[pb.Device(
            container_path="/dev/x", host_path="/dev/crt-ctr-none", permissions="rw")]),
         NOT_FOUND),
        ("device that is a file", container_config(command=sh, devices=[pb.Device(
            container_path="/dev/x", host_path=str(rig.config), permissions="rw")]), INVALID),
        ("unknown user name", container_config(command=sh, linux=_linux(
            run_as_username="crt-nobody-here")), NOT_FOUND),
        ("unknown capability", container_config(command=sh, linux=_linux(
            capabilities=pb.Capability(add_capabilities=["CAP_CRT_MAGIC"]))), INVALID),
        *[(f"seccomp profile {ref}", container_config(command=sh, linux=_linux(
            seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                       localhost_ref=ref))), INVALID)
          for ref in ("/etc/passwd", "profiles/p.json", str(rig.base),
                      str(rig.base / "none.json"))],
        ("run_as_group without a user", container_config(command=sh, linux=_linux(
            run_as_group=pb.Int64Value(value=1234))), INVALID),
        ("recursive read-only without readonly", container_config(command=sh, mounts=[
            pb.Mount(container_path="/data", host_path=str(rig.base / "data"),
                     recursive_read_only=True)]), INVALID),
        ("recursive read-only with host-to-container propagation", container_config(
            command=sh, mounts=[pb.Mount(
                container_path="/data", host_path=str(rig.base / "data"), readonly=True,
                recursive_read_only=True, propagation=pb.PROPAGATION_HOST_TO_CONTAINER)]),
         INVALID),
        ("recursive read-only with bidirectional propagation", container_config(
            command=sh, mounts=[pb.Mount(
                container_path="/data", host_path=str(rig.base / "data"), readonly=True,
                recursive_read_only=True, propagation=pb.PROPAGATION_BIDIRECTIONAL)]),
         INVALID),
        ("no metadata", pb.ContainerConfig(image=pb.ImageSpec(image=rig.image)), INVALID),
        ("log path escaping the pod log dir", container_config(command=sh,
                                                              log_path="../../etc/x.log"),
         INVALID),
    ]


def test_bad_configs_are_refused_and_leave_nothing(rig: ContainerRig) -> None:
    (rig.base / "sneaky").symlink_to(rig.daemon.run_root)
    (rig.base / "data").mkdir()
    pod = rig.run_pod()
    for what, cfg, code in _bad_configs(rig):
        with pytest.raises(grpc.RpcError) as err:
            rig.create(pod, cfg)
        assert err.value.code() == code, (what, err.value.details())
        assert err.value.details(), what
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    assert os.listdir(rig.daemon.root / "containers") == []
    assert mounts_under(rig.daemon.root / "containers") == []
    assert not (rig.daemon.run_root / "runtime").exists() or \
        os.listdir(rig.daemon.run_root / "runtime") == []


def test_unknown_or_stopped_sandbox(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/true",), image=rig.image)
    assert code_of(lambda: rig.create(("f" * 64, pod[1]), cfg)) == NOT_FOUND
    assert code_of(lambda: rig.create(("", pod[1]), cfg)) == INVALID
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
    assert code_of(lambda: rig.create(pod, cfg)) == PRECONDITION
    assert os.listdir(rig.daemon.root / "containers") == []


def test_missing_command_fails_at_create_or_start_cleanly(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/crt/no/such/binary",))
    code = code_of(lambda: rig.run(pod, cfg))
    assert code in (INVALID, PRECONDITION, grpc.StatusCode.INTERNAL, NOT_FOUND), code
    for c in rig.rt.ListContainers(pb.ListContainersRequest()).containers:
        rig.remove(c.id)
    assert os.listdir(rig.daemon.root / "containers") == []
    assert mounts_under(rig.daemon.root / "containers") == []


def test_unknown_container_ids(rig: ContainerRig) -> None:
    unknown = "e" * 64
    for call in (lambda: rig.status(unknown),
                 lambda: rig.rt.StartContainer(pb.StartContainerRequest(container_id=unknown)),
                 lambda: rig.exec(unknown, "/bin/true"),
                 lambda: rig.rt.ContainerStats(pb.ContainerStatsRequest(container_id=unknown))):
        assert code_of(call) == NOT_FOUND
    assert code_of(lambda: rig.status("")) == INVALID
    rig.remove(unknown)  # idempotent
    assert code_of(lambda: rig.exec(unknown, timeout=-1)) == INVALID
    assert Path(rig.daemon.socket).exists()
