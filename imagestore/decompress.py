"""Streaming readers for layer blobs: raw chunks → (gzip | zstd | none) → counted, hashed tar.

Each reader has `read(n)` returning at most `n` bytes, so memory stays bounded whatever the
compression ratio; `Uncompressed` enforces the decompression-bomb limits and computes the
layer's diff_id as the tar streams through.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import zstandard

from imagestore.errors import InvalidImage

CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class BombLimits:
    """Refuse a layer past `max_bytes` uncompressed, or past `max_ratio` × its compressed bytes
    once it is over `ratio_floor` (gzip alone reaches ~1000:1 on zeros)."""

    max_bytes: int
    max_ratio: int
    ratio_floor: int


class ChunkSource:
    """`read(n)` over an iterator of byte chunks; `count` is how many bytes were read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = memoryview(b"")
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            chunk = next(self._it, None)
            if chunk is None:
                return b""
            self._buf = memoryview(chunk)
        if n < 0 or n >= len(self._buf):
            out, self._buf = bytes(self._buf), memoryview(b"")
        else:
            out, self._buf = bytes(self._buf[:n]), self._buf[n:]
        self.count += len(out)
        return out

    def drain(self) -> None:
        """Read to the end, so that the chunk producer finishes (and verifies its digest)."""
        while self.read(CHUNK):
            pass


class Gunzip:
    """gzip decompression with bounded output per read; multi-member, zero padding tolerated."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n < 0 else n
        while True:
            if self._d.eof and not self._next_member():
                return b""
            data = self._pending or self._src.read(CHUNK)
            if not data:
                raise InvalidImage("layer gzip stream ends before its end marker")
            try:
                out = self._d.decompress(data, n)
            except zlib.error as e:
                raise InvalidImage(f"layer is not valid gzip: {e}") from None
            self._pending = self._d.unconsumed_tail
            if out:
                return out

    def _next_member(self) -> bool:
        rest = self._d.unused_data
        while not rest.strip(b"\0"):
            rest = self._src.read(CHUNK)
            if not rest:
                return False
        self._d = zlib.decompressobj(wbits=31)
        self._pending = rest
        return True


class Unzstd:
    """zstd decompression across frames; the decoder's window is capped by zstandard's default."""

    def __init__(self, src: Readable) -> None:
        dctx = zstandard.ZstdDecompressor()
        self._r = dctx.stream_reader(src, read_size=CHUNK,  # type: ignore[arg-type]
                                     read_across_frames=True)

    def read(self, n: int = -1) -> bytes:
        try:
            return self._r.read(CHUNK if n < 0 else n)
        except zstandard.ZstdError as e:
            raise InvalidImage(f"layer is not valid zstd: {e}") from None


class Uncompressed:
    """The tar stream: counts and hashes (diff_id) what it passes, enforcing `BombLimits`."""

    def __init__(self, inner: Readable, source: ChunkSource, limits: BombLimits) -> None:
        self._inner = inner
        self._source = source
        self._limits = limits
        self.hasher = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        out = self._inner.read(CHUNK if n < 0 else n)
        self.count += len(out)
        self.hasher.update(out)
        lim = self._limits
        if self.count > lim.max_bytes:
            raise InvalidImage(f"layer decompresses to more than {lim.max_bytes} bytes")
        if self.count > lim.ratio_floor and self.count > lim.max_ratio * max(self._source.count, 1):
            raise InvalidImage(f"layer decompresses more than {lim.max_ratio}:1 "
                               f"({self.count} bytes from {self._source.count}): "
                               "refused as a decompression bomb")
        return out

    def drain(self) -> None:
        """Read past the tar's end-of-archive blocks, so the diff_id covers the whole stream."""
        while self.read(CHUNK):
            pass


def open_layer(source: ChunkSource, compression: str, limits: BombLimits) -> Uncompressed:
    """The uncompressed, hashed tar stream of a layer compressed with `compression`."""
    inner: Readable
    if compression == "gzip":
        inner = Gunzip(source)
    elif compression == "zstd":
        inner = Unzstd(source)
    elif compression == "none":
        inner = source
    else:
        raise InvalidImage(f"unsupported layer compression {compression!r}")
    return Uncompressed(inner, source, limits)
