"""Pushing a stored image to a repository: each layer and the config, then the manifest.

The store keeps layers unpacked, not as the compressed blobs a manifest names, so a layer the
target lacks comes from, in order: the target registry itself by a cross-repository mount (when
the image was pulled from the same registry), a compressed blob kept in the store (layers crid
made itself), or a stream from a repository the image was pulled from, uploaded as it arrives.
The manifest goes up byte for byte, so the pushed image keeps its digest and id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from imagestore import manifest as mf
from imagestore import reference
from imagestore.digest import Digest
from imagestore.errors import ImageNotFound, ImageStoreError, InvalidImage, InvalidReference
from imagestore.reference import Reference
from imagestore.registry.client import RegistryClient
from imagestore.registry.credentials import Credentials
from imagestore.registry.push import BlobPusher
from imagestore.store.blobs import BlobStore
from imagestore.store.records import ImageRecord


@dataclass(frozen=True)
class PushEvent:
    """One step of a push, as Docker reports it: `id` is the blob's short hex."""

    id: str
    status: str  # Preparing, Layer already exists, Mounted from R, Pushing, Pushed
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class PushResult:
    """What was pushed where: the manifest's digest and size, under `target`."""

    target: Reference
    digest: Digest
    size: int


Events = Callable[[PushEvent], None]


def push_target(record: ImageRecord, target: str | None) -> Reference:
    """The tagged reference to push `record` to: `target` (unqualified names are Docker
    Hub's, as `docker push` reads them), else its most recent tag.

    Raises:
        InvalidReference: no tag to push to, or a digest given as the target.
    """
    if target is None:
        if not record.repo_tags:
            raise InvalidReference(f"image {record.id} has no tag to push to: tag it first")
        target = record.repo_tags[-1]
    ref = reference.parse(target)
    if ref.digest is not None:
        raise InvalidReference(f"push target {target!r:.80} is a digest: name a tag")
    return ref


def push_image(client: RegistryClient, blobs: BlobStore, record: ImageRecord, target: Reference,
               credentials: Credentials | None, events: Events) -> PushResult:
    """Push `record` to `target`. Raises the registry's errors; InvalidImage when a layer
    is neither at the target, nor kept, nor reachable at any source."""
    body = _kept(blobs, Digest.parse(record.manifest_digest), record)
    manifest = mf.parse(body)
    if not isinstance(manifest, mf.Manifest):
        raise InvalidImage(f"image {record.id}'s manifest {record.manifest_digest} is an index")
    pusher = BlobPusher(client, client.repository(target, credentials, push=True))
    sources = _sources(record, target)
    for desc in manifest.layers:
        _push_layer(client, blobs, pusher, desc, target, sources, credentials, events)
    config = manifest.config
    if not pusher.has_blob(config.digest):
        data = _kept(blobs, config.digest, record)
        pusher.upload(config.digest, config.size, [data])
    digest = pusher.put_manifest(target.tag or reference.DEFAULT_TAG, body, manifest.media_type)
    return PushResult(target, digest, len(body))


def _push_layer(client: RegistryClient, blobs: BlobStore, pusher: BlobPusher,
                desc: mf.Descriptor, target: Reference, sources: list[Reference],
                credentials: Credentials | None, events: Events) -> None:
    short = desc.digest.hex[:12]
    events(PushEvent(short, "Preparing"))
    if pusher.has_blob(desc.digest):
        events(PushEvent(short, "Layer already exists"))
        return
    for src in sources:
        if src.domain == target.domain and pusher.mount(desc.digest, src.path):
            events(PushEvent(short, f"Mounted from {src.path}"))
            return

    def sent(n: int) -> None:
        events(PushEvent(short, "Pushing", n, desc.size))

    if blobs.path(desc.digest).exists():
        pusher.upload(desc.digest, desc.size, blobs.chunks(desc.digest), sent)
    else:
        _copy_from_sources(client, pusher, desc, target, sources, credentials, sent)
    events(PushEvent(short, "Pushed", desc.size, desc.size))


def _copy_from_sources(client: RegistryClient, pusher: BlobPusher, desc: mf.Descriptor,
                       target: Reference, sources: list[Reference],
                       credentials: Credentials | None, sent: Callable[[int], None]) -> None:
    last: ImageStoreError | None = None
    for src in sources:
        creds = credentials if src.domain == target.domain else None
        repo = client.repository(src, creds)
        chunks = repo.stream_blob(desc.digest, desc.size)
        try:
            pusher.upload(desc.digest, desc.size, chunks, sent)
            return
        except (ImageNotFound, InvalidImage) as e:  # gone there, or not what it claimed
            last = e
        finally:
            chunks.close()
    raise InvalidImage(f"layer {desc.digest} is not kept by crid and no repository it came "
                       f"from has it any more ({last})")


def _sources(record: ImageRecord, target: Reference) -> list[Reference]:
    """Repositories the image was pulled from, the target's own registry first (mounts)."""
    refs = []
    for text in (*record.repo_digests, *record.sources):
        try:
            refs.append(reference.parse(text))
        except InvalidReference:
            continue
    refs = [r for r in refs if r.name != target.name]
    return sorted(refs, key=lambda r: r.domain != target.domain)


def _kept(blobs: BlobStore, digest: Digest, record: ImageRecord) -> bytes:
    try:
        return blobs.get(digest)
    except FileNotFoundError as e:
        raise InvalidImage(f"image {record.id} is missing its blob {digest}") from e

