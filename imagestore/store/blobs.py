"""Small blobs (manifests, indexes, configs) addressed by digest: `blobs/<alg>/<hex>`.

Layer blobs are never stored compressed: they stream straight into their unpacked directory.
"""

from __future__ import annotations

from pathlib import Path

from imagestore.digest import Digest
from imagestore.store.atomic import write_atomic


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

    def get(self, digest: Digest) -> bytes:
        """The blob's bytes. Raises FileNotFoundError."""
        return self.path(digest).read_bytes()

    def all(self) -> list[Digest]:
        return [Digest(alg.name, p.name) for alg in self._root.iterdir() if alg.is_dir()
                for p in alg.iterdir() if not p.name.startswith(".")]

    def remove(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def usage(self) -> tuple[int, int]:
        """(bytes, files) of all blobs."""
        sizes = [self.path(d).stat().st_size for d in self.all()]
        return sum(sizes), len(sizes)
