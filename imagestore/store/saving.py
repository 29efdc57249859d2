"""An image's layers as tar files, for `docker save`.

A layer made here (build, commit, import, load) is kept as its compressed blob: decompressed,
it is the very tar its diff_id names. A pulled layer is kept only unpacked; it is packed again
from its directory (imagestore/pack.py), which gives the same files but, in general, not the
same bytes as the registry's tar: its diff_id is then a new one, and `exact` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagestore import manifest as mf
from imagestore.decompress import BombLimits, ChunkSource, open_layer
from imagestore.digest import Digest
from imagestore.pack import pack_layer
from imagestore.store.blobs import BlobStore, file_chunks

_NO_LIMITS = BombLimits(1 << 62, 1 << 62, 1 << 62)  # our own blobs, checked when stored


@dataclass(frozen=True)
class SavedLayer:
    path: Path  # the uncompressed tar
    diff_id: Digest  # its sha256
    size: int
    exact: bool  # the same bytes (and diff_id) as the image config names


def saved_layer(blobs: BlobStore, desc: mf.Descriptor | None, diff_dir: Path,
                diff_id: str, out: Path) -> SavedLayer:
    """The layer as a tar at `out`: its blob decompressed when kept, else `diff_dir` packed.

    Raises:
        OSError, ImageStoreError: reading the store, writing `out`.
    """
    blob = blobs.path(desc.digest) if desc is not None else None
    if desc is not None and blob is not None and blob.is_file() and \
            desc.media_type in mf.LAYER_TYPES:
        stream = open_layer(ChunkSource(file_chunks(blob)), mf.LAYER_TYPES[desc.media_type],
                            _NO_LIMITS)
        with open(out, "wb") as f:
            while chunk := stream.read(1 << 20):
                f.write(chunk)
        got = Digest("sha256", stream.hasher.hexdigest())
        return SavedLayer(out, got, stream.count, str(got) == diff_id)
    with open(out, "wb") as f:
        stats = pack_layer(diff_dir, f)
    return SavedLayer(out, stats.diff_id, stats.size, str(stats.diff_id) == diff_id)
