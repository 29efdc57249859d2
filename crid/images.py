"""Glue between crid's configuration and the image store library."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from crid.config import ImagesConfig
from imagestore import ImageStoreOptions, RegistryOptions


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
