"""A small typed CRI v1 client over the generated stubs, for any runtime's unix socket.

The same client drives crid and containerd in the benchmarks, so it uses only plain CRI v1.
Methods return the protobuf responses (typed by `crid/api/api_pb2.pyi`); `runtime` and `images`
expose the raw stubs for calls not wrapped here. gRPC errors propagate as `grpc.RpcError`.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

import grpc

from crid.api import api_pb2 as pb
from crid.api import api_pb2_grpc

DEFAULT_TIMEOUT = 30.0
# Image configs and manifests can exceed gRPC's 4 MiB default for ListImages with many images.
_MAX_MESSAGE = 64 * 1024 * 1024


class CriClient:
    """RuntimeService + ImageService stubs on a channel to `unix://<socket>`."""

    def __init__(self, socket: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket = Path(socket)
        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            f"unix://{self.socket}",
            options=[("grpc.max_receive_message_length", _MAX_MESSAGE)],
        )
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll `Version` until it answers. Raises grpc.RpcError (the last one) on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.version()
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- RuntimeService ----------------------------------------------------------------------

    def version(self) -> pb.VersionResponse:
        return self.runtime.Version(pb.VersionRequest(version="v1"), timeout=self.timeout)

    def status(self, verbose: bool = False) -> pb.StatusResponse:
        return self.runtime.Status(pb.StatusRequest(verbose=verbose), timeout=self.timeout)

    # -- ImageService ------------------------------------------------------------------------

    def image_fs_info(self) -> pb.ImageFsInfoResponse:
        return self.images.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=self.timeout)

    def pull_image(self, ref: str, username: str | None = None, password: str | None = None,
                   timeout: float | None = None) -> str:
        """Pull `ref`; returns the `image_ref` the runtime reports."""
        auth = pb.AuthConfig(username=username, password=password or "") if username else None
        req = pb.PullImageRequest(image=pb.ImageSpec(image=ref), auth=auth)
        return self.images.PullImage(req, timeout=timeout or self.timeout).image_ref

    def image_status(self, ref: str, verbose: bool = False) -> pb.Image | None:
        """The image, or None when the runtime does not have it."""
        resp = self.images.ImageStatus(
            pb.ImageStatusRequest(image=pb.ImageSpec(image=ref), verbose=verbose),
            timeout=self.timeout,
        )
        return resp.image if resp.HasField("image") else None

    def list_images(self) -> list[pb.Image]:
        return list(self.images.ListImages(pb.ListImagesRequest(), timeout=self.timeout).images)

    def remove_image(self, ref: str) -> None:
        self.images.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)),
                                timeout=self.timeout)
