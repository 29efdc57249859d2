"""Images made here (build, commit, import, load): new layers from tar files, on top of a
stored image or of nothing, with the config and an OCI manifest written by the store.

Each new layer is unpacked into the layer store like a pulled one (same safety checks: the tar
may come from a container or a user's archive) and kept gzip-compressed as a blob, so a push
can upload it. The layers of the base image are named in the manifest as the base's manifest
names them; the base's sources (where it was pulled from) travel with the new record, so a
push finds them there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagestore import manifest as mf
from imagestore.digest import Digest
from imagestore.errors import InvalidImage

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"
# A layer whose first SAMPLE bytes gzip to more than INCOMPRESSIBLE of their size (random,
# encrypted or already compressed data) is kept as the tar itself: deflate would spend a
# second per 50 MB to save nothing, and the OCI spec allows uncompressed layers.
SAMPLE = 4 << 20
INCOMPRESSIBLE = 0.9
_OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Speed over ratio: commit and build pay the compression on the spot (Docker pays it at push).
_GZIP_LEVEL = 1
_CHUNK = 1 << 20
# The same bytes under the OCI name, so one manifest never mixes Docker and OCI types.
_AS_OCI = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": GZIP_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": _OCI_ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


@dataclass(frozen=True)
class NewImage:
    """What to make: `layers` (uncompressed tar files, bottom first) on top of `base` (an
    image name or id; None: from scratch), with `config` (the image config without `rootfs`:
    os, architecture, config, history, created ...) and `tags`."""

    base: str | None
    layers: tuple[Path, ...]
    config: dict[str, Any]
    tags: tuple[str, ...] = ()
    # A loaded image's config as it came (its digest is the image id it keeps): `config`
    # parsed from it, its `rootfs` checked against the layers instead of written.
    raw_config: bytes | None = None


@dataclass(frozen=True)
class CompressedLayer:
    """A new layer kept as a blob: the gzip file, its digest and size, the tar's diff_id."""

    path: Path
    digest: Digest
    size: int
    diff_id: Digest
    media_type: str = GZIP_LAYER


def compress_layer(tar: Path, out: Path) -> CompressedLayer:
    """gzip `tar` into `out`, hashing both sides in the same pass; an incompressible tar is
    linked (or copied) to `out` as it is instead.

    Raises:
        OSError: reading or writing.
    """
    if _incompressible(tar):
        return _as_is(tar, out)
    raw, packed = hashlib.sha256(), hashlib.sha256()
    z = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip framing, mtime 0
    size = 0
    with open(tar, "rb") as src, open(out, "wb") as dst:
        while chunk := src.read(_CHUNK):
            raw.update(chunk)
            data = z.compress(chunk)
            packed.update(data)
            dst.write(data)
            size += len(data)
        data = z.flush()
        packed.update(data)
        dst.write(data)
        size += len(data)
        dst.flush()
        os.fsync(dst.fileno())
    return CompressedLayer(out, Digest("sha256", packed.hexdigest()), size,
                           Digest("sha256", raw.hexdigest()))


def _incompressible(tar: Path) -> bool:
    with open(tar, "rb") as f:
        sample = f.read(SAMPLE)
    if len(sample) < SAMPLE:  # small: gzip costs nothing worth saving
        return False
    z = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    packed = len(z.compress(sample)) + len(z.flush())
    return packed > INCOMPRESSIBLE * len(sample)


def _as_is(tar: Path, out: Path) -> CompressedLayer:
    """`tar` as its own blob at `out` (a hard link where the file system allows)."""
    try:
        os.link(tar, out)
    except OSError:
        shutil.copyfile(tar, out)
    digest = hashlib.sha256()
    size = 0
    with open(out, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    d = Digest("sha256", digest.hexdigest())
    return CompressedLayer(out, d, size, d, TAR_LAYER)


def build_config(base_config: dict[str, Any] | None, config: dict[str, Any],
                 new_diff_ids: list[Digest]) -> dict[str, Any]:
    """`config` with `rootfs` set: the base's diff_ids, then the new layers'.

    Raises:
        InvalidImage: `config` is not an object or lacks os/architecture.
    """
    if not isinstance(config, dict):
        raise InvalidImage("an image config must be a JSON object")
    out = {k: v for k, v in config.items() if k != "rootfs"}
    for key in ("os", "architecture"):
        if not isinstance(out.get(key), str) or not out[key]:
            raise InvalidImage(f"an image config needs {key!r}")
    base_ids = list(base_config["rootfs"]["diff_ids"]) if base_config else []
    out["rootfs"] = {"type": "layers", "diff_ids": base_ids + [str(d) for d in new_diff_ids]}
    return out


def build_manifest(base: mf.Manifest | None, config_digest: Digest, config_size: int,
                   new: list[CompressedLayer]) -> bytes:
    """An OCI image manifest: the base's layer descriptors, then the new layers."""
    layers = [_descriptor(_AS_OCI.get(d.media_type, d.media_type), d.digest, d.size)
              for d in (base.layers if base else ())]
    layers += [_descriptor(c.media_type, c.digest, c.size) for c in new]
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
           "config": _descriptor(mf.OCI_CONFIG, config_digest, config_size), "layers": layers}
    return json.dumps(doc, separators=(",", ":")).encode()


def canonical(doc: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys: the same config always gives the same image id."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _descriptor(media_type: str, digest: Digest, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(digest), "size": size}
