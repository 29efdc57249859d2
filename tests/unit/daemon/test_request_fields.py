"""The identifying fields a failed RPC's log line carries."""

from __future__ import annotations

from crid.api import api_pb2 as pb
from crid.server.request_fields import identify


def test_pull_names_the_image_and_the_pod() -> None:
    req = pb.PullImageRequest(
        image=pb.ImageSpec(image="docker.io/library/busybox:1"),
        auth=pb.AuthConfig(username="u", password="secret"),
        sandbox_config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", namespace="n")))
    assert identify(req) == {"image": "docker.io/library/busybox:1", "pod": "n/p"}


def test_create_container_names_everything() -> None:
    req = pb.CreateContainerRequest(
        pod_sandbox_id="abc",
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="web"),
                                  image=pb.ImageSpec(image="nginx")),
        sandbox_config=pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p")))
    assert identify(req) == {"pod_id": "abc", "container": "web", "image": "nginx", "pod": "p"}


def test_run_pod_and_ids() -> None:
    req = pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="p", namespace="kube-system")))
    assert identify(req) == {"pod": "kube-system/p"}
    assert identify(pb.ExecSyncRequest(container_id="c1", cmd=["true"])) == {"container_id": "c1"}
    assert identify(pb.VersionRequest()) == {}
    assert identify(pb.ListContainersRequest(filter=pb.ContainerFilter(id="x"))) == {}
