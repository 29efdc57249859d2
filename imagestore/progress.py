"""Pull progress: what a pull reports per layer, for clients that draw it (Docker's bars)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Layer phases, in order. EXISTS: the layer was already stored (no download).
WAITING, DOWNLOADING, VERIFIED, DONE, EXISTS = "waiting", "downloading", "verified", "done", \
    "exists"


@dataclass(frozen=True)
class LayerProgress:
    """One layer's progress: `digest` of the blob, bytes `current` of `total`."""

    digest: str
    phase: str
    current: int = 0
    total: int = 0


Progress = Callable[[LayerProgress], None]


def counting(chunks: Iterator[bytes], digest: str, total: int,
             report: Progress) -> Iterator[bytes]:
    """Passes chunks through, reporting DOWNLOADING as bytes arrive and VERIFIED at the end
    (the registry client checks the digest as the last chunk is read)."""
    current = 0
    for chunk in chunks:
        current += len(chunk)
        report(LayerProgress(digest, DOWNLOADING, current, total))
        yield chunk
    report(LayerProgress(digest, VERIFIED, current, total))
