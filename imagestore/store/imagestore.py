"""The image store: pull, look up, list, remove images; layer directories for overlay mounts.

On-disk layout under `options.root`:
    images.json            all image records (atomic rewrite)
    blobs/sha256/<hex>     manifests, indexes, configs
    layers/<hex>/diff      one unpacked layer per chain ID; layers/<hex>/layer.json
    tmp/                   work in progress; emptied on open
A pull publishes layers one by one (each atomically) and the image record last; until the record
is written nothing of the pull is visible, and on failure the layers it added that no image uses
are removed. Open removes what a crash left behind.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from imagestore import manifest as mf
from imagestore import reference
from imagestore.decompress import BombLimits
from imagestore.digest import Digest, chain_ids
from imagestore.errors import (
    ImageInUse,
    ImageNotFound,
    ImageStoreError,
    InvalidImage,
    InvalidReference,
    VerificationFailed,
)
from imagestore.options import ImageStoreOptions
from imagestore.progress import DONE, EXISTS, WAITING, LayerProgress, Progress, counting
from imagestore.reference import Reference
from imagestore.registry.client import RegistryClient, Repository
from imagestore.registry.credentials import Credentials
from imagestore.registry.push import catalog
from imagestore.store import records as rec
from imagestore.store.blobs import BlobStore, file_chunks
from imagestore.store.creating import (
    CompressedLayer,
    NewImage,
    build_config,
    build_manifest,
    canonical,
    compress_layer,
)
from imagestore.store.layers import LayerInfo, LayerStore
from imagestore.store.pushing import PushEvent, PushResult, push_image, push_target
from imagestore.store.records import ImageRecord
from imagestore.store.resolve import Resolved, resolve
from imagestore.store.saving import SavedLayer, saved_layer
from imagestore.unpack import unpack_layer

_ID = re.compile(r"^(?:sha256:)?([a-f0-9]{64})$")
_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,63})$")


class FsUsage(NamedTuple):
    """Space the image store uses: bytes, inodes, and the mount point it lives on."""

    used_bytes: int
    inodes_used: int
    mountpoint: Path


class ImageStore:
    """Thread-safe image store; one per root directory (per process).

    `registry` is the seam to the network (default: a RegistryClient over the options);
    `in_use()` returns the ids of images that containers use, which `remove` refuses.
    """

    def __init__(self, options: ImageStoreOptions, registry: RegistryClient | None = None,
                 in_use: Callable[[], Collection[str]] | None = None,
                 platform: mf.Platform | None = None) -> None:
        self._opts = options
        self._own_registry = registry is None  # reconfigure() rebuilds only its own client
        self._registry = registry or RegistryClient(options)
        self._in_use = in_use or (lambda: ())
        self._platform = platform
        self._pinned = _normalise_pins(options)  # InvalidReference: a bad `pinned` option
        root = Path(options.root)
        self._lock_fd = _lock_root(root)
        try:
            self._records_path = root / "images.json"
            self._tmp = root / "tmp"
            _clean_dir(self._tmp)
            self._blobs = BlobStore(root / "blobs")
            self._layers = LayerStore(root / "layers", self._tmp)
            self._lock = threading.RLock()
            self._records = {i: self._pin(r) for i, r in rec.load(self._records_path).items()}
            self._leases: Counter[str] = Counter()
            self.gc()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._pool = ThreadPoolExecutor(max(1, options.parallel_downloads),
                                        thread_name_prefix="imagestore-layer")

    @property
    def root(self) -> Path:
        """The store's directory (options.root)."""
        return Path(self._opts.root)

    def reconfigure(self, options: ImageStoreOptions) -> None:
        """Takes new registry settings (mirrors, insecure, auth file, certificates, short-name
        registries, pins) for the pulls that start from now on; pulls in flight finish with
        the settings they started with. `root` and `parallel_downloads` stay as they were
        for the store's lifetime.

        Raises:
            InvalidReference: a bad `pinned` entry (nothing is changed).
        """
        pinned = _normalise_pins(options)
        options = replace(options, root=self._opts.root,
                          parallel_downloads=self._opts.parallel_downloads)
        registry = RegistryClient(options) if self._own_registry else self._registry
        with self._lock:
            self._opts, self._registry, self._pinned = options, registry, pinned
            self._records = {i: self._pin(r) for i, r in self._records.items()}

    def close(self) -> None:
        """Stop the download threads (waits for running ones) and unlock the root."""
        self._pool.shutdown(wait=True)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- pulling -------------------------------------------------------------------------

    def pull(self, ref: str, credentials: Credentials | None = None,
             progress: Progress | None = None) -> ImageRecord:
        """Pull `ref` (normalised; unqualified names tried on each short-name registry).

        Returns the image record; its `id` is what CRI's PullImage returns as image_ref.
        `progress`, if given, is called (from download threads) as each layer advances.

        Raises:
            InvalidReference, ImageNotFound, AuthenticationRequired, AccessDenied,
            RegistryUnavailable, InvalidImage, VerificationFailed.
        """
        refs = reference.candidates(ref, self._opts.short_name_registries)
        for i, candidate in enumerate(refs):
            try:
                return self._pull_one(candidate, credentials, progress or _no_progress)
            except ImageNotFound:
                if i + 1 == len(refs):
                    raise
            except OSError as e:  # the store's own disk (full, read-only, I/O error)
                raise ImageStoreError(f"pulling {candidate}: storing failed: {e}") from e
        raise AssertionError("candidates is never empty")

    def _pull_one(self, ref: Reference, credentials: Credentials | None,
                  progress: Progress) -> ImageRecord:
        repo = self._registry.repository(ref, credentials)
        resolved = resolve(repo, ref, self._opts, self._platform)
        chains = [str(c) for c in chain_ids(mf.diff_ids(resolved.config))]
        with self._lock:
            self._leases.update(chains)
        try:
            infos = self._fetch_layers(repo, resolved, chains, progress)
            for digest, body in resolved.blobs.items():
                self._blobs.put(digest, body)
            if self._opts.sync_layers:
                os.sync()  # layer files are not fsynced one by one (see LayerStore)
            return self._record(ref, resolved, chains, infos)
        finally:
            with self._lock:
                self._leases.subtract(chains)
                self._leases += Counter()  # drop zero counts
            self.gc()  # after a failure: what this pull added and nothing uses

    def _fetch_layers(self, repo: Repository, resolved: Resolved, chains: list[str],
                      progress: Progress) -> list[LayerInfo]:
        limits = BombLimits(self._opts.max_unpacked_bytes, self._opts.max_ratio,
                            self._opts.ratio_floor)
        diff_ids = mf.diff_ids(resolved.config)

        cancel = threading.Event()  # set by the first failing layer: the others stop early

        def fetch(i: int) -> LayerInfo:
            desc = resolved.manifest.layers[i]

            def unpack(dest: Path) -> Any:
                chunks = repo.stream_blob(desc.digest, desc.size)
                try:
                    counted = counting(chunks, str(desc.digest), desc.size, progress)
                    return unpack_layer(_until(cancel, counted), mf.LAYER_TYPES[desc.media_type],
                                        dest, diff_ids[i], limits)
                finally:
                    chunks.close()
            if cancel.is_set():
                raise _Cancelled("another layer of this pull failed")
            try:
                if self._layers.get(chains[i]) is not None:
                    progress(LayerProgress(str(desc.digest), EXISTS, 0, desc.size))
                info = self._layers.ensure(chains[i], unpack)
                progress(LayerProgress(str(desc.digest), DONE, desc.size, desc.size))
                return info
            except BaseException:
                cancel.set()
                raise

        for desc in resolved.manifest.layers:
            progress(LayerProgress(str(desc.digest), WAITING, 0, desc.size))
        futures = [self._pool.submit(fetch, i) for i in range(len(chains))]
        errors = [f.exception() for f in futures]  # wait for all: no stray writer remains
        real = [e for e in errors if e is not None and not isinstance(e, _Cancelled)]
        if real:
            raise real[0]
        return [f.result() for f in futures]

    def _record(self, ref: Reference, resolved: Resolved, chains: list[str],
                infos: list[LayerInfo]) -> ImageRecord:
        image_id = str(resolved.config_digest)
        tag = f"{ref.name}:{ref.tag}" if ref.tag and not ref.digest else None
        digest = str(ref.with_digest(resolved.repo_digest))
        uid, username = mf.user_of(resolved.config)
        with self._lock:
            records = dict(self._records)
            old = records.get(image_id)
            tags = list(old.repo_tags) if old else []
            if tag:
                _untag(records, tag)
                tags = [t for t in tags if t != tag] + [tag]
            digests = list(old.repo_digests) if old else []
            if digest not in digests:
                digests.append(digest)
            blobs = set(old.blobs) if old else set()
            blobs.update(str(d) for d in resolved.blobs)
            record = self._pin(ImageRecord(
                id=image_id, repo_tags=tuple(tags), repo_digests=tuple(digests),
                size=sum(i.size for i in infos), uid=uid, username=username, pinned=False,
                chain_ids=tuple(chains), manifest_digest=str(resolved.manifest_digest),
                blobs=tuple(sorted(blobs))))
            records[image_id] = record
            rec.save(self._records_path, records)
            self._records = records
            return record

    # --- making images -------------------------------------------------------------------

    def create(self, new: NewImage) -> ImageRecord:
        """Store an image made of `new.layers` (tar files) on top of `new.base`: each layer
        unpacked (checked as a pulled one is) and kept compressed, then config, manifest and
        the record with `new.tags` (moved from any image that had them).

        Raises:
            ImageNotFound: no such base. InvalidImage: a bad tar or config.
            ImageStoreError: the store's own disk failed.
        """
        base, base_manifest, base_config = self._base(new.base)
        work = self._tmp / f"create-{os.urandom(6).hex()}"
        work.mkdir()
        try:
            layers = [compress_layer(t, work / f"{i}.gz") for i, t in enumerate(new.layers)]
            config = build_config(base_config, new.config, [c.diff_id for c in layers])
            if new.raw_config is not None:
                _check_rootfs(new.config, config)
            chains = [str(c) for c in chain_ids(mf.diff_ids(config))]
            with self._lock:
                self._leases.update(chains)
            try:
                return self._store_made(new, base, base_manifest, config, chains, layers)
            finally:
                with self._lock:
                    self._leases.subtract(chains)
                    self._leases += Counter()
                self.gc()
        except OSError as e:
            raise ImageStoreError(f"storing a new image: {e}") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _base(self, name: str | None
              ) -> tuple[ImageRecord | None, mf.Manifest | None, dict[str, Any] | None]:
        if name is None:
            return None, None, None
        with self._lock:
            record = self._find(name)
        if record is None:
            raise ImageNotFound(f"base image {name!r:.80} not found")
        parsed = mf.parse(self._blobs.get(Digest.parse(record.manifest_digest)))
        if not isinstance(parsed, mf.Manifest):
            raise InvalidImage(f"image {record.id}'s manifest is an index")
        return record, parsed, self.config(record.id)

    def _store_made(self, new: NewImage, base: ImageRecord | None,
                    base_manifest: mf.Manifest | None, config: dict[str, Any],
                    chains: list[str], layers: builtins.list[CompressedLayer]) -> ImageRecord:
        limits = BombLimits(self._opts.max_unpacked_bytes, self._opts.max_ratio,
                            self._opts.ratio_floor)
        first = len(chains) - len(layers)
        infos = [self._layers.get(c) for c in chains[:first]]
        if any(i is None for i in infos):
            raise ImageNotFound(f"base image {new.base!r:.80} was removed meanwhile")
        for i, (tar, layer) in enumerate(zip(new.layers, layers, strict=True)):
            def unpack(dest: Path, tar: Path = tar, layer: CompressedLayer = layer) -> Any:
                return unpack_layer(file_chunks(tar), "none", dest, layer.diff_id, limits)
            infos.append(self._layers.ensure(chains[first + i], unpack))
        config_bytes = new.raw_config if new.raw_config is not None else canonical(config)
        config_digest = Digest.of(config_bytes)
        manifest = build_manifest(base_manifest, config_digest, len(config_bytes), layers)
        manifest_digest = Digest.of(manifest)
        self._blobs.put(config_digest, config_bytes)
        self._blobs.put(manifest_digest, manifest)
        for layer in layers:
            self._blobs.put_file(layer.digest, layer.path)
        blobs = {str(config_digest), str(manifest_digest), *(str(c.digest) for c in layers)}
        if base:
            blobs.update(base.blobs)
        uid, username = mf.user_of(config)
        record = ImageRecord(
            id=str(config_digest), repo_tags=(), repo_digests=(),
            size=sum(i.size for i in infos if i), uid=uid, username=username, pinned=False,
            chain_ids=tuple(chains), manifest_digest=str(manifest_digest),
            blobs=tuple(sorted(blobs)),
            sources=(*base.repo_digests, *base.sources) if base else ())
        tags = [str(reference.parse(t)) for t in new.tags]
        with self._lock:
            records = dict(self._records)
            old = records.get(record.id)
            keep = [t for t in (old.repo_tags if old else ()) if t not in tags]
            for tag in tags:
                _untag(records, tag)
            record = self._pin(replace(record, repo_tags=(*keep, *tags),
                                       repo_digests=old.repo_digests if old else ()))
            records[record.id] = record
            rec.save(self._records_path, records)
            self._records = records
        return record

    # --- pushing -------------------------------------------------------------------------

    def push(self, name_or_id: str, target: str | None = None,
             credentials: Credentials | None = None,
             events: Callable[[PushEvent], None] | None = None) -> PushResult:
        """Push the image `name_or_id` to `target` (a tag; default: the image's latest tag),
        reporting each layer's progress to `events`. The image gains the pushed repo digest.

        Raises:
            ImageNotFound, InvalidReference, AuthenticationRequired, AccessDenied,
            RegistryUnavailable, InvalidImage, VerificationFailed.
        """
        with self._lock:
            record = self._find(name_or_id)
        if record is None:
            raise ImageNotFound(f"image {name_or_id!r:.80} not found")
        ref = push_target(record, target)
        result = push_image(self._registry, self._blobs, record, ref, credentials,
                            events or (lambda _e: None))
        self._add_repo_digest(record.id, str(ref.with_digest(result.digest)))
        return result

    def _add_repo_digest(self, image_id: str, digest: str) -> None:
        with self._lock:
            current = self._records.get(image_id)
            if current is None or digest in current.repo_digests:
                return
            records = dict(self._records)
            records[image_id] = current.with_names(current.repo_tags,
                                                   (*current.repo_digests, digest))
            rec.save(self._records_path, records)
            self._records = records

    def search(self, term: str, limit: int = 25) -> builtins.list[str]:
        """`registry/repository` names containing `term`, from the catalogs of the short-name
        registries in order (through their mirrors, as pulls go), at most `limit`.

        Raises:
            CatalogUnavailable: none of the registries offers a catalog. RegistryUnavailable.
        """
        found: builtins.list[str] = []
        failures: builtins.list[ImageStoreError] = []
        for domain in self._opts.short_name_registries:
            try:
                names = catalog(self._registry, domain)
            except ImageStoreError as e:
                failures.append(e)
                continue
            found += [f"{domain}/{n}" for n in names if term.lower() in n.lower()]
        if failures and len(failures) == len(self._opts.short_name_registries):
            raise failures[0]
        return found[:limit]

    # --- queries -------------------------------------------------------------------------

    def status(self, name_or_id: str) -> ImageRecord | None:
        """The image named by id, id prefix, tag or digest reference; None if absent."""
        with self._lock:
            return self._find(name_or_id)

    def list(self) -> builtins.list[ImageRecord]:
        """All images (from memory)."""
        with self._lock:
            return list(self._records.values())

    def config(self, image_id: str) -> dict[str, Any]:
        """The image config (OCI image-spec config JSON) of an image.

        Raises:
            ImageNotFound: no such image.
        """
        record = self._require(image_id)
        return mf.parse_config(self._blobs.get(Digest.parse(record.id)),
                               len(record.chain_ids))

    def config_bytes(self, image_id: str) -> bytes:
        """The image config as stored (its sha256 is the image id).

        Raises:
            ImageNotFound: no such image.
        """
        return self._blobs.get(Digest.parse(self._require(image_id).id))

    def save_layers(self, image_id: str, work: Path) -> builtins.list[SavedLayer]:
        """The image's layers, bottom first, as uncompressed tars written under `work`
        (the caller's directory; see saving.py for when a tar is not the original's).

        Raises:
            ImageNotFound: no such image (or it was removed meanwhile).
            ImageStoreError: reading the store or writing `work` failed.
        """
        record = self._require(image_id)
        with self._lock:
            self._leases.update(record.chain_ids)  # no gc under our feet
        try:
            parsed = mf.parse(self._blobs.get(Digest.parse(record.manifest_digest)))
            descs = parsed.layers if isinstance(parsed, mf.Manifest) else ()
            diff_ids = [str(d) for d in mf.diff_ids(self.config(record.id))]
            out = []
            for i, chain in enumerate(record.chain_ids):
                desc = descs[i] if i < len(descs) else None
                out.append(saved_layer(self._blobs, desc, self._layers.diff_dir(chain),
                                       diff_ids[i], work / f"layer-{i}.tar"))
            return out
        except OSError as e:
            raise ImageStoreError(f"saving image {record.id}: {e}") from e
        finally:
            with self._lock:
                self._leases.subtract(record.chain_ids)
                self._leases += Counter()

    def layer_dirs(self, image_id: str) -> builtins.list[Path]:
        """The image's layer directories for overlayfs `lowerdir`: TOP layer FIRST.

        (`lowerdir=a:b:c` stacks a over b over c, so the list joins with ':' as is.)

        Raises:
            ImageNotFound: no such image.
        """
        record = self._require(image_id)
        return [self._layers.diff_dir(c) for c in reversed(record.chain_ids)]

    def layer_sizes(self, image_id: str) -> builtins.list[int]:
        """Bytes of each of the image's unpacked layers, bottom first (0 for one not found).

        Raises:
            ImageNotFound: no such image.
        """
        record = self._require(image_id)
        return [info.size if (info := self._layers.get(c)) else 0 for c in record.chain_ids]

    def fs_usage(self) -> FsUsage:
        """Bytes and inodes used by layers, blobs and records, and the mount point."""
        layers = self._layers.all()
        blob_bytes, blob_files = self._blobs.usage()
        used = sum(i.size for i in layers) + blob_bytes
        inodes = sum(i.inodes for i in layers) + blob_files
        return FsUsage(used, inodes, _mountpoint(Path(self._opts.root)))

    # --- names ---------------------------------------------------------------------------

    def tag(self, name_or_id: str, target: str) -> ImageRecord:
        """Points the tag `target` (normalised, moved from any other image) at an image.

        Raises:
            ImageNotFound: no such image; InvalidReference: target is not a tag reference.
        """
        refs = reference.candidates(target, self._opts.short_name_registries or ("docker.io",))
        ref = refs[0]
        if ref.digest or not ref.tag:
            raise InvalidReference(f"cannot tag with {target!r:.100}: a tag is needed")
        tag = f"{ref.name}:{ref.tag}"
        with self._lock:
            record = self._require(name_or_id)
            records = dict(self._records)
            _untag(records, tag)
            current = records[record.id]
            records[record.id] = self._pin(current.with_names(
                (*current.repo_tags, tag), current.repo_digests))
            rec.save(self._records_path, records)
            self._records = records
            return records[record.id]

    def untag(self, name: str) -> ImageRecord | None:
        """Removes one tag or repo digest reference from its image (the image stays, even with
        no name left). Returns the image as it is now, None when no image has that name."""
        with self._lock:
            record = self._find(name)
            if record is None or _ID.match(name):
                return None
            names = {f"{r.name}:{r.tag}" if r.tag and not r.digest else str(r)
                     for r in reference.candidates(
                         name, self._opts.short_name_registries or ("docker.io",))}
            updated = self._pin(record.with_names(
                tuple(t for t in record.repo_tags if t not in names),
                tuple(d for d in record.repo_digests if d not in names)))
            records = {**self._records, record.id: updated}
            rec.save(self._records_path, records)
            self._records = records
            return updated

    # --- removal -------------------------------------------------------------------------

    def remove(self, name_or_id: str) -> None:
        """Remove the image named by id, tag or digest with ALL its tags; absent is no error.

        Raises:
            ImageInUse: a container uses it.
        """
        with self._lock:
            record = self._find(name_or_id)
            if record is None:
                return
            if record.id in set(self._in_use()):
                raise ImageInUse(f"image {record.id} ({', '.join(record.repo_tags) or 'untagged'})"
                                 " is used by a container")
            records = {i: r for i, r in self._records.items() if i != record.id}
            rec.save(self._records_path, records)
            self._records = records
        self.gc()

    def gc(self) -> None:
        """Remove layers and blobs no image record uses (nor a pull in progress)."""
        with self._lock:
            keep_layers = {c for r in self._records.values() for c in r.chain_ids}
            keep_layers.update(self._leases)
            keep_blobs = {b for r in self._records.values() for b in r.blobs}
            unused = [i.chain_id for i in self._layers.all() if i.chain_id not in keep_layers]
            doomed = [self._layers.unpublish(c) for c in unused]
            if not self._leases:  # a running pull stores its blobs just before its record
                for digest in self._blobs.all():
                    if str(digest) not in keep_blobs:
                        self._blobs.remove(digest)
        for path in doomed:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------

    def _require(self, image_id: str) -> ImageRecord:
        with self._lock:
            record = self._find(image_id)
        if record is None:
            raise ImageNotFound(f"image {image_id!r:.100} not found")
        return record

    def _find(self, name: str) -> ImageRecord | None:
        m = _ID.match(name)
        if m:
            return self._records.get(f"sha256:{m.group(1)}")
        try:
            refs = reference.candidates(name, self._opts.short_name_registries or ("docker.io",))
        except InvalidReference:
            refs = []
        for ref in refs:
            for record in self._records.values():
                if ref.digest and str(ref.with_digest(ref.digest)) in record.repo_digests:
                    return record
                if not ref.digest and f"{ref.name}:{ref.tag}" in record.repo_tags:
                    return record
        m = _PREFIX.match(name)
        if m:
            hits = [r for i, r in self._records.items() if i[7:].startswith(m.group(1))]
            if len(hits) == 1:
                return hits[0]
        return None

    def _pin(self, record: ImageRecord) -> ImageRecord:
        names = set(record.repo_tags) | set(record.repo_digests)
        pinned = bool(names & self._pinned)
        return record if record.pinned == pinned else replace(record, pinned=pinned)


def _check_rootfs(given: dict[str, Any], made: dict[str, Any]) -> None:
    """A loaded config names exactly the layers it came with.

    Raises:
        VerificationFailed: a layer's diff_id is not the one its config says.
    """
    said = (given.get("rootfs") or {}).get("diff_ids") if isinstance(given, dict) else None
    if said != made["rootfs"]["diff_ids"]:
        raise VerificationFailed(f"the layers have diff_ids {made['rootfs']['diff_ids']}, "
                                 f"the image config says {said}")


class _Cancelled(ImageStoreError):
    """Internal: a layer download stopped because another layer of its pull failed. Never
    escapes `pull` (the failure that caused it is raised instead); a concurrent pull waiting on
    the same layer retries it itself (LayerStore.ensure)."""


def _no_progress(event: LayerProgress) -> None:
    """The default progress callback: nobody is drawing."""


def _until(cancel: threading.Event, chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel.is_set():
            raise _Cancelled("another layer of this pull failed")
        yield chunk


def _untag(records: dict[str, ImageRecord], tag: str) -> None:
    for image_id, record in list(records.items()):
        if tag in record.repo_tags:
            records[image_id] = record.with_names(
                tuple(t for t in record.repo_tags if t != tag), record.repo_digests)


def _normalise_pins(options: ImageStoreOptions) -> set[str]:
    out = set()
    for text in options.pinned:
        for ref in reference.candidates(text, options.short_name_registries or ("docker.io",)):
            out.add(str(ref.with_digest(ref.digest)) if ref.digest else f"{ref.name}:{ref.tag}")
    return out


def _lock_root(root: Path) -> int:
    """Hold an exclusive flock on `<root>/.lock` (released on close or process death): two
    stores on one root would delete each other's work in progress."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ImageStoreError(f"image store {root} is in use by another process") from None
    return fd


def _mountpoint(path: Path) -> Path:
    path = path.resolve()
    dev = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == dev:
        path = path.parent
    return path


def _clean_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


__all__ = ["FsUsage", "ImageStore"]
