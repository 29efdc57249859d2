"""Test images: config, Docker schema2 / OCI manifests, manifest lists / indexes, and push.

`build_image(ImageSpec(...))` builds layers (in parallel: zlib and zstd release the GIL), an image
config with correct `rootfs.diff_ids` and `history`, and a manifest; `build_index([...])` a
multi-arch index over built images; `push(client, repo, image_or_index, tag)` uploads every
blob and manifest through a `DistributionClient`. Ready-made images (busybox, pause, the
"kitchen sink", big) are in `tests.rig.catalog`.
"""

from __future__ import annotations

import json
import platform as host_platform
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.rig.distribution import DistributionClient
from tests.rig.layers import BuiltLayer, LayerSpec, build_layer, sha256_digest
from tests.rig.tree import Tree, merged_tree, overlay_layer_tree

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER_TYPES = {
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
    ("docker", "zstd"): "application/vnd.docker.image.rootfs.diff.tar.zstd",
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
}
FORMATS = ("oci", "docker")
DEFAULT_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
CREATED = "2024-01-01T00:00:00Z"


class ImageBuildError(Exception):
    """An image description cannot be built (unknown format, mixed formats in an index)."""


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        return out | ({"variant": self.variant} if self.variant else {})


def native_platform() -> Platform:
    """This machine's platform in OCI terms."""
    machine = host_platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return Platform(architecture=arch, variant="v7" if arch == "arm" else "")


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (`config` in the JSON)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = DEFAULT_ENV
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"Env": list(self.env)}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        optional = {
            "WorkingDir": self.working_dir, "User": self.user, "StopSignal": self.stop_signal,
            "ExposedPorts": {p: {} for p in self.exposed_ports},
            "Volumes": {v: {} for v in self.volumes}, "Labels": dict(self.labels),
        }
        return out | {k: v for k, v in optional.items() if v}


@dataclass(frozen=True)
class ImageSpec:
    """An image to build: layers bottom-up, runtime config, platform, "oci" or "docker"."""

    layers: tuple[LayerSpec, ...]
    config: ImageConfig = field(default_factory=ImageConfig)
    platform: Platform = field(default_factory=native_platform)
    format: str = "oci"
    author: str = "crt-rig"
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Blob:
    """Bytes with their media type and digest, as the registry stores them."""

    media_type: str
    data: bytes
    digest: str
    size: int

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, data, sha256_digest(data), len(data))

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size} | extra


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image: its manifest, config and layer blobs."""

    spec: ImageSpec
    manifest: Blob
    config: Blob
    layers: tuple[BuiltLayer, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def image_id(self) -> str:
        """The config digest: what CRI reports as `Image.id`."""
        return self.config.digest

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    def layer_blobs(self) -> tuple[Blob, ...]:
        return tuple(Blob(_layer_type(self.spec.format, la.compression), la.data, la.digest,
                          la.size) for la in self.layers)

    def blobs(self) -> tuple[Blob, ...]:
        """Config and layers: every blob the manifest references."""
        return (self.config, *self.layer_blobs())

    def expected_tree(self) -> Tree:
        """What the container sees: the layers stacked with whiteouts applied."""
        return merged_tree(self.layers)

    def expected_layer_trees(self) -> tuple[Tree, ...]:
        """Each layer as an overlayfs lower dir (whiteouts as 0:0 char devices)."""
        return tuple(overlay_layer_tree(layer) for layer in self.layers)


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform OCI index or Docker manifest list over `images`."""

    manifest: Blob
    images: tuple[BuiltImage, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def for_platform(self, platform: Platform) -> BuiltImage:
        """The entry a client on `platform` should select."""
        for image in self.images:
            if image.spec.platform == platform:
                return image
        raise KeyError(f"no image for {platform} in index {self.digest}")


def build_image(spec: ImageSpec) -> BuiltImage:
    """Build layers, config and manifest. Raises ImageBuildError, LayerError."""
    if spec.format not in FORMATS:
        raise ImageBuildError(f"unknown image format {spec.format!r} (want one of {FORMATS})")
    with ThreadPoolExecutor(max_workers=4) as pool:
        layers = tuple(pool.map(build_layer, spec.layers))
    config = Blob.of(DOCKER_CONFIG if spec.format == "docker" else OCI_CONFIG,
                     _json(_config_json(spec, layers)))
    layer_blobs = [Blob(_layer_type(spec.format, la.compression), la.data, la.digest, la.size)
                   for la in layers]
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if spec.format == "docker" else OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layer_blobs],
    }
    if spec.annotations and spec.format == "oci":
        manifest["annotations"] = dict(spec.annotations)
    return BuiltImage(spec, Blob.of(str(manifest["mediaType"]), _json(manifest)), config, layers)


def build_index(images: Sequence[BuiltImage], format: str = "oci") -> BuiltIndex:  # noqa: A002
    """An index (oci) or manifest list (docker) over `images`, each entry with its platform."""
    if any(image.spec.format != format for image in images):
        raise ImageBuildError(f"a {format} index needs {format} manifests only")
    media_type = DOCKER_LIST if format == "docker" else OCI_INDEX
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [im.manifest.descriptor(platform=im.spec.platform.as_dict())
                      for im in images],
    }
    return BuiltIndex(Blob.of(media_type, _json(body)), tuple(images))


def push(client: DistributionClient, repo: str, image: BuiltImage | BuiltIndex,
         tag: str | None = "latest", chunk_size: int | None = None) -> str:
    """Upload every blob (skipping ones the registry has) and manifest of `image` to `repo`,
    the top manifest by `tag` (by digest when `tag` is None). Returns the top digest.
    Raises DistributionError on an unexpected registry answer."""
    children = image.images if isinstance(image, BuiltIndex) else (image,)
    for child in children:
        for blob in child.blobs():
            if not client.blob_exists(repo, blob.digest):
                client.push_blob(repo, blob.data, blob.digest, chunk_size=chunk_size)
        if isinstance(image, BuiltIndex):
            client.push_manifest(repo, child.digest, child.manifest.media_type,
                                 child.manifest.data)
    top = image.manifest
    client.push_manifest(repo, tag or top.digest, top.media_type, top.data)
    return top.digest


def _config_json(spec: ImageSpec, layers: Sequence[BuiltLayer]) -> dict[str, object]:
    history: list[dict[str, object]] = [
        {"created": CREATED, "created_by": f"crt-rig: layer {i} ({la.compression})",
         "author": spec.author}
        for i, la in enumerate(layers)
    ]
    history.append({"created": CREATED, "created_by": "crt-rig: config", "empty_layer": True})
    out: dict[str, object] = {
        "created": CREATED,
        "author": spec.author,
        **spec.platform.as_dict(),
        "config": spec.config.as_dict(),
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
        "history": history,
    }
    return out


def _layer_type(fmt: str, compression: str) -> str:
    return _LAYER_TYPES[(fmt, compression)]


def _json(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, indent=2, sort_keys=False).encode()
