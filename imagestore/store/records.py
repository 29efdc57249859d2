"""Image records and their on-disk file (`images.json`, rewritten atomically on each change).

One file for all records makes a tag move (from the old image to the new one) a single atomic
write; kubelet-sized stores hold hundreds of images, so rewriting it is cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from imagestore.errors import ImageStoreError
from runtime.linux.atomic import write_atomic

_VERSION = 1


@dataclass(frozen=True)
class ImageRecord:
    """A pulled image.

    id: the config digest `sha256:<hex>` (what CRI calls Image.id and PullImage's image_ref).
    repo_tags: `registry/repo:tag` names pointing at it; repo_digests: `registry/repo@digest`
    (the digest the registry resolved: an index's for a multi-platform image).
    size: bytes of its unpacked layers' regular files. uid/username: from the config `User`
    (uid for a number, username for a name). pinned: named in the `pinned` option.
    chain_ids: its layers' chain IDs, bottom first. manifest_digest: the platform manifest.
    """

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    uid: int | None
    username: str
    pinned: bool
    chain_ids: tuple[str, ...]
    manifest_digest: str
    blobs: tuple[str, ...]  # every blob kept for it: manifests, index, config, made layers
    # `registry/repo@digest` names its layers can be fetched from besides its own repo
    # digests: an image made here on top of a pulled one inherits the base's.
    sources: tuple[str, ...] = ()

    def with_names(self, tags: tuple[str, ...], digests: tuple[str, ...]) -> ImageRecord:
        return replace(self, repo_tags=tags, repo_digests=digests)


def load(path: Path) -> dict[str, ImageRecord]:
    """Records by id; an absent file is an empty store."""
    try:
        doc = json.loads(path.read_bytes())
        return {r["id"]: _from_dict(r) for r in doc.get("images", [])}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # Written atomically, so only disk corruption or an operator's edit gets here.
        raise ImageStoreError(f"reading image records {path}: {type(e).__name__}: {e}") from e


def save(path: Path, records: dict[str, ImageRecord]) -> None:
    """Write all records atomically."""
    doc = {"version": _VERSION, "images": [asdict(r) for r in records.values()]}
    write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode())


def _from_dict(d: dict[str, Any]) -> ImageRecord:
    return ImageRecord(
        id=d["id"], repo_tags=tuple(d["repo_tags"]), repo_digests=tuple(d["repo_digests"]),
        size=int(d["size"]), uid=d.get("uid"), username=d.get("username", ""),
        pinned=bool(d.get("pinned")), chain_ids=tuple(d["chain_ids"]),
        manifest_digest=d["manifest_digest"], blobs=tuple(d.get("blobs", ())),
        sources=tuple(d.get("sources", ())))
