"""GET /images/get?names=..., GET /images/{name}/get: `docker save`, images as one tar in the
layout Docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`
with uncompressed layer tars, configs and OCI manifests) that is also Docker's archive
(`manifest.json` naming config, tags and layers by their blob paths; `repositories`).

A name with a tag saves that tag; a repository without one, every tag of it; an id, the
image without tags. A layer pulled from a registry is kept only unpacked, so its tar is
packed again and gets a new diff_id: such an image is saved with its config's diff_ids
rewritten, and so a new id (imagestore/store/saving.py). Images built, committed, imported
or loaded here keep their id.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from crid.docker.commit import work_dir
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.export import piped
from crid.docker.http import Response
from crid.docker.images import find
from crid.docker.router import Router
from imagestore import (
    ImageRecord,
    InvalidReference,
    SavedLayer,
    parse_reference,
    reference_candidates,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class SavedImage:
    config: bytes
    layers: tuple[SavedLayer, ...]
    tags: tuple[str, ...]  # full references ("registry/repo:tag")


def familiar(tag: str) -> str:
    """The tag as Docker writes it in an archive: without docker.io/library/."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def _tags_named(d: DockerDeps, name: str, record: ImageRecord) -> list[str]:
    """The tags `name` asks for: itself (a tag), every tag of it (a repository), none (an
    id or a digest)."""
    if record.id.removeprefix("sha256:").startswith(name.removeprefix("sha256:")) or \
            "@" in name:
        return []
    try:
        refs = reference_candidates(name, d.short_names)
    except InvalidReference:
        return []
    if ":" in name.rpartition("/")[2]:
        wanted = {f"{r.name}:{r.tag}" for r in refs}
        return [t for t in record.repo_tags if t in wanted][:1]
    repos = {r.name for r in refs}
    return [t for r in d.images.list() for t in r.repo_tags if t.rpartition(":")[0] in repos]


def selected(d: DockerDeps, names: list[str]) -> list[tuple[ImageRecord, list[str]]]:
    """The images `names` mean, each with the tags to save (ids in first-named order).

    Raises:
        NotFound: a name is no image. BadRequest: no names.
    """
    if not names:
        raise BadRequest("no image to save: names= is required")
    chosen: dict[str, tuple[ImageRecord, list[str]]] = {}
    for name in names:
        record = find(d, name)
        tags = _tags_named(d, name, record)
        for tag in tags:
            owner = d.images.status(tag)
            if owner is not None and owner.id != record.id:
                chosen.setdefault(owner.id, (owner, []))[1].append(tag)
                continue
            chosen.setdefault(record.id, (record, []))[1].append(tag)
        chosen.setdefault(record.id, (record, []))
    return [(r, sorted(set(t))) for r, t in chosen.values()]


def prepare(d: DockerDeps, record: ImageRecord, tags: list[str], work: Path) -> SavedImage:
    """The image's layers as tars under `work`, and the config that names them."""
    layers = tuple(d.images.save_layers(record.id, work))
    config = d.images.config_bytes(record.id)
    if not all(layer.exact for layer in layers):
        doc = json.loads(config)
        doc["rootfs"] = {"type": "layers", "diff_ids": [str(la.diff_id) for la in layers]}
        config = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return SavedImage(config, layers, tuple(tags))


def _digest_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_archive(images: list[SavedImage], out: BinaryIO) -> None:
    """The archive of `images` into `out` (a stream: nothing seeks)."""
    written: set[str] = set()
    manifest_json: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _dir(tar, "blobs/")
        _dir(tar, "blobs/sha256/")
        for image in images:
            layer_paths = []
            for layer in image.layers:
                name = f"blobs/sha256/{layer.diff_id.hex}"
                if name not in written:
                    written.add(name)
                    info = _info(name, layer.size)
                    with open(layer.path, "rb") as f:
                        tar.addfile(info, f)
                layer_paths.append(name)
            config_hex = _digest_hex(image.config)
            _bytes(tar, f"blobs/sha256/{config_hex}", image.config, written)
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{config_hex}",
                           "size": len(image.config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": str(la.diff_id),
                            "size": la.size} for la in image.layers]},
                separators=(",", ":")).encode()
            manifest_hex = _digest_hex(manifest)
            _bytes(tar, f"blobs/sha256/{manifest_hex}", manifest, written)
            desc = {"mediaType": OCI_MANIFEST, "digest": f"sha256:{manifest_hex}",
                    "size": len(manifest)}
            for tag in image.tags:
                ref = parse_reference(tag)
                index.append({**desc, "annotations": {
                    "io.containerd.image.name": str(ref),
                    "org.opencontainers.image.ref.name": ref.tag or "latest"}})
                repo, _, t = familiar(tag).rpartition(":")
                repositories.setdefault(repo, {})[t] = config_hex
            if not image.tags:
                index.append(desc)
            manifest_json.append({"Config": f"blobs/sha256/{config_hex}",
                                  "RepoTags": [familiar(t) for t in image.tags] or None,
                                  "Layers": layer_paths})
        _bytes(tar, "index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                              "manifests": index}).encode(), written)
        _bytes(tar, "manifest.json", json.dumps(manifest_json).encode(), written)
        _bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', written)
        if repositories:
            _bytes(tar, "repositories", json.dumps(repositories).encode(), written)


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o444, 0
    return info


def _dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def _bytes(tar: tarfile.TarFile, name: str, data: bytes, written: set[str]) -> None:
    if name in written:
        return
    written.add(name)
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def save(d: DockerDeps, names: list[str]) -> Response:
    chosen = selected(d, names)
    work = Path(tempfile.mkdtemp(prefix="save-", dir=work_dir(d)))
    try:
        images = [prepare(d, r, tags, Path(tempfile.mkdtemp(dir=work))) for r, tags in chosen]
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Response(200, _cleaned(piped(lambda out: write_archive(images, out),
                                        "saving images"), work),
                    content_type="application/x-tar")


def _cleaned(chunks: Iterator[bytes], work: Path) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/images/get", lambda req: save(d, req.query.get("names", [])))
    router.add("GET", "/images/{name}/get", lambda req: save(d, [req.params["name"]]))
