"""Manifests, indexes and image configs (OCI image-spec, Docker image manifest v2 schema 2).

Parsing is strict: JSON objects only, known media types only, digests validated, Docker schema 1
refused. `select_platform` picks this machine's entry from an index.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from imagestore.digest import Digest
from imagestore.errors import InvalidImage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST]
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
# Layer media type → compression. Non-distributable ("foreign") layers are refused: they live
# outside the registry, on URLs we would have to trust.
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
}


@dataclass(frozen=True)
class Platform:
    """os/architecture/variant of an image or of this machine."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest, size (and a platform in an index)."""

    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config and its layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    """An OCI index or Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def parse(body: bytes, content_type: str = "") -> Manifest | Index:
    """Parse a manifest or index; the body's `mediaType` wins over the Content-Type.

    Raises:
        InvalidImage: not JSON, schema 1, unknown media type, or a malformed field.
    """
    doc = _json_object(body, "manifest")
    if doc.get("schemaVersion") == 1 or content_type in DOCKER_SCHEMA1:
        raise InvalidImage("Docker schema 1 manifests are not supported (deprecated since 2017); "
                           "push the image again with a current client")
    if doc.get("schemaVersion") != 2:
        raise InvalidImage(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r:.20}")
    media_type = doc.get("mediaType") or _infer(doc, content_type)
    if media_type in MANIFEST_TYPES:
        return _manifest(doc, media_type)
    if media_type in INDEX_TYPES:
        return Index(media_type, tuple(_descriptor(d, "manifest") for d in _list(doc, "manifests")))
    raise InvalidImage(f"unsupported manifest media type {media_type!r:.100}")


def parse_config(body: bytes, layer_count: int) -> dict[str, Any]:
    """Parse an image config and check `rootfs.diff_ids` against the manifest's layers.

    Raises:
        InvalidImage: not a JSON object, no layers rootfs, or a diff_ids/layers mismatch.
    """
    config = _json_object(body, "image config")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidImage("image config has no rootfs of type 'layers'")
    ids = diff_ids(config)
    if len(ids) != layer_count:
        raise InvalidImage(f"image config lists {len(ids)} diff_ids for {layer_count} layers")
    return config


def diff_ids(config: dict[str, Any]) -> list[Digest]:
    """The uncompressed layer digests of a parsed config, bottom first."""
    ids = config.get("rootfs", {}).get("diff_ids")
    if not isinstance(ids, list):
        raise InvalidImage("image config rootfs.diff_ids is not a list")
    return [Digest.parse(d) for d in ids]


def user_of(config: dict[str, Any]) -> tuple[int | None, str]:
    """`(uid, "")` for a numeric config `User`, `(None, name)` for a name, `(None, "")` if unset.

    Only the user part of `user:group` counts, as the CRI Image message wants.
    """
    runtime = config.get("config")
    user = runtime.get("User") if isinstance(runtime, dict) else None
    name = user.split(":", 1)[0] if isinstance(user, str) else ""
    if name.isdigit():
        return int(name), ""
    return None, name


def host_platform() -> Platform:
    """This machine's platform in OCI terms (Go's GOARCH names)."""
    machine = _platform.machine().lower()
    arch, variant = _ARCH.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def select_platform(index: Index, want: Platform | None = None) -> Descriptor:
    """The index entry for `want` (default: this machine); exact variant first.

    arm64 matches an empty variant or v8; arm/vN also accepts lower variants, best first.

    Raises:
        InvalidImage: no entry is a manifest for the platform.
    """
    want = want or host_platform()
    variants = _compatible_variants(want)
    best: tuple[int, Descriptor] | None = None
    for desc in index.manifests:
        p = desc.platform
        if desc.media_type not in MANIFEST_TYPES or p is None:
            continue
        if (p.os, p.architecture) != (want.os, want.architecture) or p.variant not in variants:
            continue
        rank = variants.index(p.variant)
        if best is None or rank < best[0]:
            best = (rank, desc)
    if best is None:
        offered = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
        raise InvalidImage(f"no image for platform {want} in the index (offered: {offered})")
    return best[1]


_ARCH = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"), "i386": ("386", ""), "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def _compatible_variants(want: Platform) -> list[str]:
    if want.architecture == "arm64":
        return [want.variant, "v8", ""] if want.variant not in ("", "v8") else ["v8", ""]
    if want.architecture == "arm" and want.variant.startswith("v") and want.variant[1:].isdigit():
        return [f"v{n}" for n in range(int(want.variant[1:]), 4, -1)] + [""]
    return [want.variant, ""] if want.variant else [""]


def _infer(doc: dict[str, Any], content_type: str) -> str:
    if content_type in MANIFEST_TYPES + INDEX_TYPES:
        return content_type
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    return content_type or "(none)"


def _manifest(doc: dict[str, Any], media_type: str) -> Manifest:
    config = _descriptor(doc.get("config"), "config")
    if config.media_type not in CONFIG_TYPES:
        raise InvalidImage(f"unsupported image config media type {config.media_type!r:.100}")
    layers = tuple(_descriptor(d, "layer") for d in _list(doc, "layers"))
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise InvalidImage(f"unsupported layer media type {layer.media_type!r:.100} "
                               f"(layer {layer.digest})")
    return Manifest(media_type, config, layers)


def _descriptor(d: object, what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise InvalidImage(f"{what} descriptor is not an object")
    media_type, size = d.get("mediaType"), d.get("size")
    if not isinstance(media_type, str) or not isinstance(size, int) or size < 0 \
            or isinstance(size, bool):
        raise InvalidImage(f"{what} descriptor needs a mediaType and a non-negative size")
    digest = Digest.parse(d.get("digest", ""))
    plat = d.get("platform")
    platform = None
    if isinstance(plat, dict):
        platform = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                            str(plat.get("variant", "")))
    annotations = d.get("annotations") if isinstance(d.get("annotations"), dict) else {}
    return Descriptor(media_type, digest, size, platform, dict(annotations or {}))


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise InvalidImage(f"manifest field {key!r} is not a list")
    return value


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidImage(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidImage(f"{what} is not a JSON object")
    return doc
