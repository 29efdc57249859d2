"""POST /images/load: `docker load` of Docker's archive (`manifest.json`, as every Docker
writes it, the legacy `<id>/layer.tar` layout included) or of an OCI image layout
(`index.json` and `blobs/`), plain or compressed.

The archive is hostile until checked, and is never unpacked onto disk: it is spooled to an
unnamed file and read as a table of its members. A name that is absolute or climbs out
(`..`), a link that points outside the archive or at nothing, a device, a missing blob, a
config or layer whose digest is not the one it is named by: 400, nothing stored. Every image's
config and layers are checked (each layer decompressed once, into the work directory) before
the first image is stored; the image store then unpacks each layer with a pulled layer's
checks, and an image that still fails takes the images this load stored with it. The config
is stored as it came, so the image keeps its id.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from crid.docker.commit import work_dir
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.http import Request, Response
from crid.docker.imports import write_tar
from crid.docker.router import Router
from imagestore import (
    ImageStoreError,
    InvalidImage,
    NewImage,
    VerificationFailed,
    host_platform,
)

MAX_MEMBERS = 1 << 16
MAX_JSON = 8 << 20  # bytes of a manifest, index or config
_HEX = re.compile(r"(?:^|/)(?:sha256/)?([a-f0-9]{64})(?:\.json|/layer\.tar)?$")
_MANIFESTS = ("application/vnd.oci.image.manifest.v1+json",
              "application/vnd.docker.distribution.manifest.v2+json")
_INDEXES = ("application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json")


class Archive:
    """The members of a tar, by clean name; links resolved inside it only.

    Raises (constructor):
        BadRequest: a name out of the archive, a device or fifo, too many members.
    """

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self._members: dict[str, tarfile.TarInfo] = {}
        for count, m in enumerate(tar):
            if count >= MAX_MEMBERS:
                raise BadRequest(f"the archive has more than {MAX_MEMBERS} entries")
            name = clean_name(m.name)
            if m.isdir():
                continue
            if not (m.isreg() or m.issym() or m.islnk()):
                raise BadRequest(f"archive entry {m.name!r:.120} is not a file")
            self._members[name] = m

    def has(self, name: str) -> bool:
        return clean_name(name) in self._members

    def open(self, name: str) -> IO[bytes]:
        """The member's data, links followed inside the archive.

        Raises:
            BadRequest: no such member, or a link out of the archive or in a loop.
        """
        member = self._resolve(clean_name(name))
        f = self._tar.extractfile(member)
        if f is None:
            raise BadRequest(f"archive entry {name!r:.120} has no data")
        return f

    def read_json(self, name: str) -> tuple[bytes, Any]:
        """The member's bytes and their JSON.

        Raises:
            BadRequest: missing, too large, or not JSON.
        """
        data = self.open(name).read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise BadRequest(f"{name!r:.120} in the archive is larger than {MAX_JSON} bytes")
        try:
            return data, json.loads(data)
        except ValueError as e:
            raise BadRequest(f"{name!r:.120} in the archive is not JSON: {e}") from None

    def _resolve(self, name: str) -> tarfile.TarInfo:
        for _hop in range(16):
            member = self._members.get(name)
            if member is None:
                raise BadRequest(f"the archive has no {name!r:.120} (a missing blob)")
            if member.isreg():
                return member
            target = member.linkname if member.islnk() else \
                posixpath.join(posixpath.dirname(name), member.linkname)
            if member.linkname.startswith("/"):
                raise BadRequest(f"archive entry {name!r:.120} links out of the archive")
            name = clean_name(target)
        raise BadRequest(f"archive entry {name!r:.120}: too many levels of links")


def clean_name(name: str) -> str:
    """A member name made relative and normal.

    Raises:
        BadRequest: absolute, or climbing out of the archive.
    """
    if name.startswith("/"):
        raise BadRequest(f"archive entry {name!r:.120} is an absolute path")
    clean = posixpath.normpath(name)
    if clean == ".." or clean.startswith("../"):
        raise BadRequest(f"archive entry {name!r:.120} points out of the archive")
    return clean


@dataclass(frozen=True)
class _Image:
    config: bytes
    parsed: dict[str, Any]
    layers: tuple[Path, ...]
    tags: tuple[str, ...]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _named_digest(name: str) -> str | None:
    m = _HEX.search(clean_name(name))
    return m.group(1) if m else None


def _layer(archive: Archive, name: str, diff_id: str, blob_digest: str | None,
           work: Path) -> Path:
    """The layer member decompressed to a tar under `work`, checked against its digests."""
    out = Path(tempfile.mkstemp(dir=work, suffix=".tar")[1])
    source = _Hashing(archive.open(name))
    with open(out, "wb") as f:
        write_tar(source, f)
    raw = source.hasher
    if blob_digest is not None and raw.hexdigest() != blob_digest:
        raise BadRequest(f"layer {name!r:.120} has digest sha256:{raw.hexdigest()}, it is "
                         f"named sha256:{blob_digest}")
    got = _file_sha(out)
    if f"sha256:{got}" != diff_id:
        raise BadRequest(f"layer {name!r:.120} has diff_id sha256:{got}, the image config "
                         f"says {diff_id}")
    return out


class _Hashing(io.RawIOBase):
    """A member's data, hashed as it is read (a layer blob's digest is of its raw bytes)."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self.hasher = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(buffer))
        self.hasher.update(data)
        buffer[:len(data)] = data
        return len(data)


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _config(archive: Archive, name: str, digest: str | None) -> tuple[bytes, dict[str, Any]]:
    data, parsed = archive.read_json(name)
    if digest is not None and _sha(data) != digest:
        raise BadRequest(f"image config {name!r:.120} has digest sha256:{_sha(data)}, it is "
                         f"named sha256:{digest}")
    if not isinstance(parsed, dict) or not isinstance(parsed.get("rootfs"), dict) or \
            not isinstance(parsed["rootfs"].get("diff_ids"), list):
        raise BadRequest(f"image config {name!r:.120} has no rootfs.diff_ids")
    return data, parsed


def docker_images(archive: Archive, work: Path) -> list[_Image]:
    """The images of Docker's archive format (manifest.json)."""
    _, entries = archive.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("manifest.json is not a list of images")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or \
                not isinstance(entry.get("Layers"), list):
            raise BadRequest("a manifest.json entry lacks Config or Layers")
        config, parsed = _config(archive, entry["Config"], _named_digest(entry["Config"]))
        diff_ids = parsed["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise BadRequest(f"image {entry['Config']!r:.80} names {len(entry['Layers'])} "
                             f"layers, its config {len(diff_ids)}")
        layers = tuple(_layer(archive, str(name), str(diff_ids[i]),
                              _blob_digest(str(name)), work)
                       for i, name in enumerate(entry["Layers"]))
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadRequest("RepoTags is not a list of names")
        out.append(_Image(config, parsed, layers, tuple(tags)))
    return out


def _blob_digest(name: str) -> str | None:
    """A layer stored as `blobs/sha256/<hex>` is named by its blob digest (Docker 25+)."""
    clean = clean_name(name)
    return clean.rsplit("/", 1)[1] if clean.startswith("blobs/sha256/") else None


def _blob(archive: Archive, desc: Any, kinds: tuple[str, ...] | None) -> tuple[bytes, Any]:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise BadRequest("a descriptor without a digest")
    alg, _, hexd = desc["digest"].partition(":")
    if alg != "sha256" or not re.fullmatch(r"[a-f0-9]{64}", hexd):
        raise BadRequest(f"unsupported digest {desc['digest']!r:.80}")
    if kinds is not None and desc.get("mediaType") not in kinds:
        raise BadRequest(f"unsupported media type {desc.get('mediaType')!r:.80}")
    data, parsed = archive.read_json(f"blobs/sha256/{hexd}")
    if _sha(data) != hexd:
        raise BadRequest(f"blob sha256:{hexd} has digest sha256:{_sha(data)}")
    return data, parsed


def _platform_ok(desc: dict[str, Any]) -> bool:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return True
    host = host_platform()
    return p.get("os") == host.os and p.get("architecture") == host.architecture


def oci_images(archive: Archive, work: Path) -> list[_Image]:
    """The images of an OCI image layout (index.json)."""
    _, index = archive.read_json("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise BadRequest("index.json has no manifests")
    by_manifest: dict[str, list[str]] = {}
    for desc, tag in _manifests(archive, index["manifests"], depth=0):
        tags = by_manifest.setdefault(desc["digest"], [])
        if tag:
            tags.append(tag)
    out = []
    for digest, tags in by_manifest.items():
        _, manifest = _blob(archive, {"digest": digest}, None)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise BadRequest(f"manifest {digest} has no layers")
        cdesc = manifest.get("config") or {}
        config_hex = str(cdesc.get("digest", "")).partition(":")[2]
        config, parsed = _config(archive, f"blobs/sha256/{config_hex}", config_hex)
        diff_ids = parsed["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest["layers"]):
            raise BadRequest(f"manifest {digest} names {len(manifest['layers'])} layers, its "
                             f"config {len(diff_ids)}")
        layers = []
        for i, ldesc in enumerate(manifest["layers"]):
            hexd = str((ldesc or {}).get("digest", "")).partition(":")[2]
            if not re.fullmatch(r"[a-f0-9]{64}", hexd):
                raise BadRequest(f"manifest {digest} has a layer without a sha256 digest")
            layers.append(_layer(archive, f"blobs/sha256/{hexd}", str(diff_ids[i]), hexd, work))
        out.append(_Image(config, parsed, tuple(layers), tuple(tags)))
    return out


def _manifests(archive: Archive, descs: list[Any], depth: int
               ) -> list[tuple[dict[str, Any], str]]:
    if depth > 4:
        raise BadRequest("indexes nested too deep")
    out = []
    for desc in descs:
        if not isinstance(desc, dict):
            raise BadRequest("a manifest descriptor is not an object")
        kind = desc.get("mediaType")
        if kind in _INDEXES:
            data, nested = _blob(archive, desc, _INDEXES)
            if not isinstance(nested, dict) or not isinstance(nested.get("manifests"), list):
                raise BadRequest(f"index {desc['digest']} has no manifests")
            picked = [m for m in nested["manifests"] if isinstance(m, dict) and _platform_ok(m)]
            inner = _manifests(archive, picked[:1], depth + 1)
            out += [(m, _tag_of(desc) or t) for m, t in inner]
        elif kind in _MANIFESTS:
            if _platform_ok(desc):
                out.append((desc, _tag_of(desc)))
        else:
            raise BadRequest(f"unsupported media type {kind!r:.80} in index.json")
    return out


def _tag_of(desc: dict[str, Any]) -> str:
    notes = desc.get("annotations") or {}
    if not isinstance(notes, dict):
        return ""
    name = notes.get("io.containerd.image.name") or ""
    ref = notes.get("org.opencontainers.image.ref.name") or ""
    if isinstance(name, str) and name:
        return name
    # a ref.name that is a whole reference (skopeo writes "busybox:latest"), not a bare tag
    return ref if isinstance(ref, str) and ":" in ref else ""


def _store(d: DockerDeps, images: list[_Image]) -> list[str]:
    """Stores every image (all or none); the lines `docker load` prints."""
    made: list[str] = []
    lines = []
    try:
        for image in images:
            existed = d.images.status(f"sha256:{_sha(image.config)}") is not None
            record = d.images.create(NewImage(None, image.layers, image.parsed,
                                              raw_config=image.config))
            if not existed:
                made.append(record.id)
            for tag in image.tags:
                d.images.tag(record.id, tag)
                lines.append(f"Loaded image: {tag}\n")
            if not image.tags:
                lines.append(f"Loaded image ID: {record.id}\n")
            d.journal.add("image", "load", record.id, name=record.id)
    except (InvalidImage, VerificationFailed) as e:
        _undo(d, made)
        raise BadRequest(f"the archive's layers are refused: {e}") from None
    except BaseException:
        _undo(d, made)
        raise
    return lines


def _undo(d: DockerDeps, made: list[str]) -> None:
    for image_id in made:
        try:
            d.images.remove(image_id)
        except ImageStoreError:
            continue


def load(d: DockerDeps, req: Request) -> Response:
    work = Path(tempfile.mkdtemp(prefix="load-", dir=work_dir(d)))
    try:
        with req.body_stream().spool() as f:
            try:
                tar = tarfile.open(fileobj=f, mode="r:*")
            except (tarfile.TarError, EOFError, OSError) as e:
                raise BadRequest(f"the body is not an image archive: {e}") from None
            with tar:
                try:
                    archive = Archive(tar)
                    images = docker_images(archive, work) if archive.has("manifest.json") \
                        else oci_images(archive, work) if archive.has("index.json") else None
                except (tarfile.TarError, EOFError, ValueError) as e:
                    raise BadRequest(f"the archive is corrupt: {e}") from None
                if images is None:
                    raise BadRequest("the archive has neither manifest.json nor index.json")
            lines = _store(d, images)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Response(200, b"".join(json.dumps({"stream": line}).encode() + b"\r\n"
                                  for line in lines))


def register(router: Router, d: DockerDeps) -> None:
    router.add("POST", "/images/load", lambda req: load(d, req), streams_body=True)
