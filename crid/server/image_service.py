"""runtime.v1.ImageService: thin translation between CRI messages and the image store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from crid.api import api_pb2 as pb
from crid.api import api_pb2_grpc
from crid.fsusage import dir_usage
from crid.server.unimplemented import fill_unimplemented


@dataclass
class ImageServiceDeps:
    images_dir: Path
    containers_dir: Path


class ImageService(api_pb2_grpc.ImageServiceServicer):
    def __init__(self, deps: ImageServiceDeps) -> None:
        self._d = deps

    def ImageFsInfo(self, request: pb.ImageFsInfoRequest, context: grpc.ServicerContext) -> Any:
        return pb.ImageFsInfoResponse(
            image_filesystems=[_fs_usage(self._d.images_dir)],
            container_filesystems=[_fs_usage(self._d.containers_dir)])


def _fs_usage(path: Path) -> pb.FilesystemUsage:
    usage = dir_usage(path)
    return pb.FilesystemUsage(
        timestamp=time.time_ns(),
        fs_id=pb.FilesystemIdentifier(mountpoint=str(path)),
        used_bytes=pb.UInt64Value(value=usage.used_bytes),
        inodes_used=pb.UInt64Value(value=usage.inodes_used))


fill_unimplemented(ImageService, "ImageService")
