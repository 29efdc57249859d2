"""Resolve a reference to a verified manifest and config (nothing is stored here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagestore import manifest as mf
from imagestore.digest import Digest
from imagestore.errors import InvalidImage
from imagestore.options import ImageStoreOptions
from imagestore.reference import Reference
from imagestore.registry.client import Fetched, Repository

# overlayfs stacks at most 500 lower layers; Docker stops at 127 (a page of mount options).
MAX_LAYERS = 127


@dataclass(frozen=True)
class Resolved:
    """A verified image: the top-level digest (repo digest), the platform manifest, the config.

    `blobs` holds every verified small blob to keep (index, manifest, config) by digest.
    """

    repo_digest: Digest
    manifest_digest: Digest
    manifest: mf.Manifest
    config_digest: Digest
    config: dict[str, Any]
    blobs: dict[Digest, bytes]


def resolve(repo: Repository, ref: Reference, opts: ImageStoreOptions,
            platform: mf.Platform | None = None) -> Resolved:
    """Fetch and verify `ref`'s manifest (through an index if any) and its config.

    Raises:
        ImageNotFound, AuthenticationRequired, AccessDenied, RegistryUnavailable,
        InvalidImage, VerificationFailed.
    """
    top = repo.get_manifest(ref.lookup, mf.ACCEPT)
    blobs = {top.digest: top.body}
    parsed = mf.parse(top.body, top.media_type)
    fetched = top
    if isinstance(parsed, mf.Index):
        desc = mf.select_platform(parsed, platform)
        if desc.size > opts.max_manifest_bytes:
            raise InvalidImage(f"manifest {desc.digest} of {ref.name} is over the size limit")
        fetched = repo.get_manifest(str(desc.digest), mf.ACCEPT)
        blobs[fetched.digest] = fetched.body
        parsed = mf.parse(fetched.body, fetched.media_type)
        if isinstance(parsed, mf.Index):
            raise InvalidImage(f"index {top.digest} of {ref.name} points at another index")
    _check_layers(parsed, ref, fetched, opts)
    cfg = parsed.config
    config_bytes = repo.fetch_blob(cfg.digest, cfg.size, opts.max_config_bytes, "image config")
    blobs[cfg.digest] = config_bytes
    config = mf.parse_config(config_bytes, len(parsed.layers))
    return Resolved(top.digest, fetched.digest, parsed, cfg.digest, config, blobs)


def _check_layers(m: mf.Manifest, ref: Reference, fetched: Fetched,
                  opts: ImageStoreOptions) -> None:
    if not m.layers or len(m.layers) > MAX_LAYERS:
        raise InvalidImage(f"manifest {fetched.digest} of {ref.name} has {len(m.layers)} layers "
                           f"(1 to {MAX_LAYERS} can be stacked)")
    for layer in m.layers:
        if layer.size > opts.max_layer_bytes:
            raise InvalidImage(f"layer {layer.digest} of {ref.name} is {layer.size} bytes, over "
                               f"the {opts.max_layer_bytes}-byte limit")
