"""The ImageService over a real registry: pull, status, list, remove, fs info, errors."""

from __future__ import annotations

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.rig.daemon import CridProcess
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry


def spec(name: str) -> pb.ImageSpec:
    return pb.ImageSpec(image=name)


def test_pull_status_list_remove(crid: CridProcess, registry: Registry,
                                 busybox_image: BuiltImage) -> None:
    push(DistributionClient(registry), "crt/busybox", busybox_image, tag="1.0")
    name = f"{registry.host}:{registry.port}/crt/busybox:1.0"
    before = crid.images.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems[0]

    ref = crid.images.PullImage(pb.PullImageRequest(image=spec(name))).image_ref
    assert ref == busybox_image.image_id

    img = crid.images.ImageStatus(pb.ImageStatusRequest(image=spec(name))).image
    assert img.id == ref and list(img.repo_tags) == [name]
    assert img.repo_digests[0].endswith("@" + busybox_image.digest)
    assert img.size > 0
    by_id = crid.images.ImageStatus(pb.ImageStatusRequest(image=spec(ref), verbose=True))
    assert by_id.image.id == ref and "config" in by_id.info["info"]
    assert [i.id for i in crid.images.ListImages(pb.ListImagesRequest()).images] == [ref]
    streamed = [i.id for r in crid.images.StreamImages(pb.StreamImagesRequest()) for i in r.images]
    assert streamed == [ref]
    after = crid.images.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems[0]
    assert after.used_bytes.value > before.used_bytes.value

    crid.images.RemoveImage(pb.RemoveImageRequest(image=spec(name)))
    assert not crid.images.ImageStatus(pb.ImageStatusRequest(image=spec(ref))).HasField("image")
    crid.images.RemoveImage(pb.RemoveImageRequest(image=spec(name)))  # absent: still fine


@pytest.mark.parametrize("name, code", [
    ("UPPER/Case", grpc.StatusCode.INVALID_ARGUMENT),
    ("", grpc.StatusCode.INVALID_ARGUMENT),
])
def test_bad_names(crid: CridProcess, name: str, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as e:
        crid.images.PullImage(pb.PullImageRequest(image=spec(name)))
    assert e.value.code() == code


def test_unknown_tag_is_not_found(crid: CridProcess, registry: Registry,
                                  busybox_image: BuiltImage) -> None:
    push(DistributionClient(registry), "crt/busybox", busybox_image, tag="1.0")
    with pytest.raises(grpc.RpcError) as e:
        crid.images.PullImage(pb.PullImageRequest(
            image=spec(f"{registry.host}:{registry.port}/crt/busybox:nope")))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_basic_auth_from_auth_config(crid: CridProcess, htpasswd_registry: Registry,
                                     busybox_image: BuiltImage) -> None:
    reg = htpasswd_registry
    push(DistributionClient(reg), "crt/private", busybox_image)
    name = f"{reg.host}:{reg.port}/crt/private:latest"
    with pytest.raises(grpc.RpcError) as e:
        crid.images.PullImage(pb.PullImageRequest(image=spec(name)))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ref = crid.images.PullImage(pb.PullImageRequest(image=spec(name), auth=pb.AuthConfig(
        username=reg.username, password=reg.password))).image_ref
    assert ref == busybox_image.image_id
    assert reg.password not in crid.log()
