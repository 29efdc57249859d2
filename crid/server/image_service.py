"""runtime.v1.ImageService: thin translation between CRI messages and the image store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from crid.api import api_pb2 as pb
from crid.api import api_pb2_grpc
from crid.errors import InvalidArgument
from crid.fsusage import dir_usage
from crid.server.unimplemented import fill_unimplemented
from imagestore import Credentials, ImageRecord, ImageStore

STREAM_CHUNK = 100


@dataclass
class ImageServiceDeps:
    store: ImageStore
    containers_dir: Path


class ImageService(api_pb2_grpc.ImageServiceServicer):
    def __init__(self, deps: ImageServiceDeps) -> None:
        self._d = deps

    def PullImage(self, request: pb.PullImageRequest, context: grpc.ServicerContext) -> Any:
        name = _required_image(request.image)
        record = self._d.store.pull(name, _credentials(request.auth))
        return pb.PullImageResponse(image_ref=record.id)

    def ImageStatus(self, request: pb.ImageStatusRequest, context: grpc.ServicerContext) -> Any:
        record = self._d.store.status(_required_image(request.image))
        if record is None:
            return pb.ImageStatusResponse()
        resp = pb.ImageStatusResponse(image=_image(record))
        if request.verbose:
            resp.info["info"] = json.dumps({"record": asdict(record),
                                            "config": self._d.store.config(record.id)})
        return resp

    def ListImages(self, request: pb.ListImagesRequest, context: grpc.ServicerContext) -> Any:
        return pb.ListImagesResponse(images=self._list(request.filter))

    def StreamImages(self, request: pb.StreamImagesRequest,
                     context: grpc.ServicerContext) -> Iterator[Any]:
        images = self._list(request.filter)
        for i in range(0, len(images), STREAM_CHUNK):
            yield pb.StreamImagesResponse(images=images[i:i + STREAM_CHUNK])

    def _list(self, f: pb.ImageFilter) -> list[pb.Image]:
        if f.image.image:
            record = self._d.store.status(f.image.image)
            return [_image(record)] if record else []
        return [_image(r) for r in self._d.store.list()]

    def RemoveImage(self, request: pb.RemoveImageRequest, context: grpc.ServicerContext) -> Any:
        self._d.store.remove(_required_image(request.image))
        return pb.RemoveImageResponse()

    def ImageFsInfo(self, request: pb.ImageFsInfoRequest, context: grpc.ServicerContext) -> Any:
        usage = self._d.store.fs_usage()
        containers = dir_usage(self._d.containers_dir)
        return pb.ImageFsInfoResponse(
            image_filesystems=[_fs(str(usage.mountpoint), usage.used_bytes, usage.inodes_used)],
            container_filesystems=[_fs(str(self._d.containers_dir), containers.used_bytes,
                                       containers.inodes_used)])


def _required_image(spec: pb.ImageSpec) -> str:
    if not spec.image:
        raise InvalidArgument("no image name given")
    return spec.image


def _credentials(auth: pb.AuthConfig) -> Credentials | None:
    creds = Credentials(username=auth.username, password=auth.password, auth=auth.auth,
                        identity_token=auth.identity_token, registry_token=auth.registry_token)
    return None if creds.is_empty() else creds


def _image(r: ImageRecord) -> pb.Image:
    img = pb.Image(id=r.id, repo_tags=r.repo_tags, repo_digests=r.repo_digests, size=r.size,
                   username=r.username, pinned=r.pinned,
                   spec=pb.ImageSpec(image=r.id, image_ref=r.id))
    if r.uid is not None:
        img.uid.value = r.uid
    return img


def _fs(mountpoint: str, used: int, inodes: int) -> pb.FilesystemUsage:
    return pb.FilesystemUsage(
        timestamp=time.time_ns(), fs_id=pb.FilesystemIdentifier(mountpoint=mountpoint),
        used_bytes=pb.UInt64Value(value=used), inodes_used=pb.UInt64Value(value=inodes))


fill_unimplemented(ImageService, "ImageService")
