from __future__ import annotations

import pytest

from crid.api import api_pb2 as pb
from crid.containers.model import NsMode, ProfileKind, Propagation
from crid.errors import InvalidArgument
from crid.server.container_convert import container_request


def cfg(**kw) -> pb.ContainerConfig:  # noqa: ANN003
    base = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="app", attempt=2),
                              image=pb.ImageSpec(image="busybox"))
    base.MergeFrom(pb.ContainerConfig(**kw))
    return base


def test_full_conversion() -> None:
    c = cfg(command=["/bin/sh"], envs=[pb.KeyValue(key="A", value=b"1")],
            mounts=[pb.Mount(container_path="/d", host_path="/h", readonly=True,
                             propagation=pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER)],
            stop_signal=pb.Signal.SIGNAL_SIGUSR1,
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=5),
                security_context=pb.LinuxContainerSecurityContext(
                    run_as_user=pb.Int64Value(value=0),
                    seccomp=pb.SecurityProfile(
                        profile_type=pb.SecurityProfile.ProfileType.RuntimeDefault),
                    namespace_options=pb.NamespaceOption(pid=pb.NamespaceMode.POD))))
    r = container_request(c)
    assert (r.name, r.attempt, r.command, r.env) == ("app", 2, ("/bin/sh",), (("A", "1"),))
    assert r.mounts[0].propagation == Propagation.HOST_TO_CONTAINER and r.mounts[0].readonly
    assert r.stop_signal == "SIGUSR1" and r.resources.memory_limit == 5
    assert r.security.run_as_user == 0  # set to 0 is not "unset"
    assert r.security.seccomp.kind == ProfileKind.RUNTIME_DEFAULT
    assert r.security.namespaces.pid == NsMode.POD


def test_absent_seccomp_is_unconfined_and_legacy_paths_work() -> None:
    assert container_request(cfg()).security.seccomp.kind == ProfileKind.UNCONFINED
    legacy = cfg(linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
        seccomp_profile_path="localhost//p.json")))
    prof = container_request(legacy).security.seccomp
    assert (prof.kind, prof.localhost_ref) == (ProfileKind.LOCALHOST, "/p.json")


@pytest.mark.parametrize("bad", [
    pb.ContainerConfig(image=pb.ImageSpec(image="x")),
    pb.ContainerConfig(metadata=pb.ContainerMetadata(name="a")),
])
def test_missing_fields(bad: pb.ContainerConfig) -> None:
    with pytest.raises(InvalidArgument):
        container_request(bad)
