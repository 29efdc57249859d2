"""Glue between crid's configuration and the image store library."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import grpc

from crid.config import ImagesConfig
from crid.server.errors import register
from imagestore import (
    AccessDenied,
    AuthenticationRequired,
    ImageInUse,
    ImageNotFound,
    ImageStoreOptions,
    InvalidImage,
    InvalidReference,
    RegistryOptions,
    RegistryUnavailable,
    VerificationFailed,
)

for _exc, _code in (
    (InvalidReference, grpc.StatusCode.INVALID_ARGUMENT),
    (ImageNotFound, grpc.StatusCode.NOT_FOUND),
    (AuthenticationRequired, grpc.StatusCode.UNAUTHENTICATED),
    (AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (RegistryUnavailable, grpc.StatusCode.UNAVAILABLE),
    (InvalidImage, grpc.StatusCode.FAILED_PRECONDITION),
    (VerificationFailed, grpc.StatusCode.DATA_LOSS),
    (ImageInUse, grpc.StatusCode.FAILED_PRECONDITION),
):
    register(_exc, _code)


def store_options(cfg: ImagesConfig, images_dir: Path) -> ImageStoreOptions:
    """The image store's options from the `[images]` table."""
    return ImageStoreOptions(
        root=images_dir,
        short_name_registries=tuple(cfg.short_name_registries),
        auth_file=Path(cfg.auth_file) if cfg.auth_file else None,
        certs_dir=Path(cfg.certs_dir),
        parallel_downloads=cfg.parallel_downloads,
        pinned=tuple(cfg.pinned),
        registries=MappingProxyType({
            host: RegistryOptions(mirrors=tuple(r.mirrors), insecure=r.insecure)
            for host, r in cfg.registries.items()}),
    )
