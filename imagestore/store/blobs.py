"""Blobs addressed by digest, `blobs/<alg>/<hex>`: manifests, indexes, configs, and the
compressed layers of images made here (for pushes).

Pulled layer blobs are never kept compressed: they stream straight into their unpacked
directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from imagestore.digest import Digest
from runtime.linux.atomic import write_atomic


class BlobStore:
    """Put, get and remove verified small blobs."""

    def __init__(self, root: Path) -> None:
        self._root = root
        (root / "sha256").mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest) -> Path:
        return self._root / digest.algorithm / digest.hex

    def put(self, digest: Digest, data: bytes) -> None:
        """Store `data`, which the caller has verified to have `digest`."""
        path = self.path(digest)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, data)

    def put_file(self, digest: Digest, path: Path) -> None:
        """Move the file `path` (flushed, on this filesystem, verified by the caller to have
        `digest`) into the store."""
        target = self.path(digest)
        if target.exists():
            path.unlink()
            return
        target.parent.mkdir(exist_ok=True)
        os.rename(path, target)
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, digest: Digest) -> bytes:
        """The blob's bytes. Raises FileNotFoundError."""
        return self.path(digest).read_bytes()

    def chunks(self, digest: Digest) -> Iterator[bytes]:
        """The blob's bytes in pieces (large blobs: made layers). Raises FileNotFoundError."""
        return file_chunks(self.path(digest))

    def all(self) -> list[Digest]:
        return [Digest(alg.name, p.name) for alg in self._root.iterdir() if alg.is_dir()
                for p in alg.iterdir() if not p.name.startswith(".")]

    def remove(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def usage(self) -> tuple[int, int]:
        """(bytes, files) of all blobs."""
        sizes = [self.path(d).stat().st_size for d in self.all()]
        return sum(sizes), len(sizes)


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes in pieces of `size`; the file is open only while they are read."""
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk
